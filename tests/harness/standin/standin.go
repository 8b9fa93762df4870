// Portainer and Portainer-agent stand-in (a test double), one static binary.
//
// Portainer mode (the default): HTTPS with the certificate and key it is given, like
// Portainer with --sslcert/--sslkey; GET /api/system/status; and, with the right
// X-API-Key, the calls phoenix-cert's readiness checks make: GET /api/endpoints and
// GET /api/endpoints/1/docker/{path}, forwarded over the network to the agent on the node
// named by X-PortainerAgent-Target (the agents are found by resolving the -H address, e.g.
// tasks.agent, as Portainer does).
//
// Agent mode (when AGENT_CLUSTER_ADDR is set, as in Portainer's agent stack): HTTPS on
// 9001 with a self-signed certificate made at start; GET /ping, /standin/node, and any
// other GET answered by the node's Docker socket (/var/run/docker.sock), if mounted.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	version         = "2.19.4-standin"
	targetHeader    = "X-PortainerAgent-Target"
	forwardTimeout  = 3 * time.Second
	discoverTimeout = 1500 * time.Millisecond
	discoveredFor   = 5 * time.Second // how long a discovery of the agents is reused
	dockerSocket    = "/var/run/docker.sock"
	dockerPrefix    = "/api/endpoints/1/docker" // environment 1's Docker API, via its agent
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "standin: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "standin: "+format+"\n", args...)
}

func main() {
	// PID 1 in a container ignores TERM unless it handles it: stop at once.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		os.Exit(0)
	}()
	if os.Getenv("AGENT_CLUSTER_ADDR") != "" {
		runAgent()
		return
	}
	runPortainer(os.Args[1:])
}

// -- Portainer ---------------------------------------------------------------------------

type portainerArgs struct {
	cert, key, port, agents string
}

func parseArgs(args []string) portainerArgs {
	p := portainerArgs{cert: "/run/secrets/portainer.sslcert", key: "/run/secrets/portainer.sslkey", port: "9443"}
	value := func(i *int, name string) string {
		if *i+1 >= len(args) {
			fail("%s needs a value", name)
		}
		*i++
		return args[*i]
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, inline, hasInline := strings.Cut(arg, "=")
		get := func() string {
			if hasInline {
				return inline
			}
			return value(&i, name)
		}
		switch name {
		case "--sslcert":
			p.cert = get()
		case "--sslkey":
			p.key = get()
		case "--bind-https": // Portainer spells it [ADDR]:PORT; only the port matters here
			bind := get()
			p.port = bind[strings.LastIndex(bind, ":")+1:]
		case "-H", "--host":
			p.agents = get()
		case "--tlsskipverify": // the agents' certificates are self-signed: never verified
		default:
			logf("ignoring argument %s", arg)
		}
	}
	return p
}

type portainer struct {
	apiKey     string
	agentHost  string // tasks.agent
	agentPort  string
	client     *http.Client
	mu         sync.Mutex
	live       map[string]string // node name -> agent address, of the last discovery
	discovered time.Time
	byNode     map[string]string // every agent ever discovered, by node name
	managers   map[string]bool   // node names whose agent runs on a swarm manager
}

func runPortainer(args []string) {
	p := parseArgs(args)
	if os.Getenv("STANDIN_FAIL_AT_START") == "1" {
		fail("STANDIN_FAIL_AT_START=1: failing on purpose")
	}
	pair, err := tls.LoadX509KeyPair(p.cert, p.key)
	if err != nil {
		fail("cannot serve %s with %s: %v", p.cert, p.key, err)
	}
	sum := sha256.Sum256(pair.Certificate[0])
	fingerprint := hex.EncodeToString(sum[:])
	if refused := os.Getenv("STANDIN_FAIL_IF_CERT_SHA256"); refused != "" {
		if strings.ToLower(strings.ReplaceAll(refused, ":", "")) == fingerprint {
			fail("STANDIN_FAIL_IF_CERT_SHA256 matches the certificate: failing on purpose")
		}
	}
	server := &portainer{
		apiKey: readKey(),
		client: &http.Client{
			Timeout: forwardTimeout,
			Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // --tlsskipverify
				DisableKeepAlives: true,
			},
		},
		byNode:   map[string]string{},
		managers: map[string]bool{},
	}
	if p.agents != "" {
		address := strings.TrimPrefix(strings.TrimPrefix(p.agents, "tcp://"), "https://")
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			fail("-H %s: give tcp://HOST:PORT", p.agents)
		}
		server.agentHost, server.agentPort = host, port
	}
	listener := &http.Server{
		Addr:              ":" + p.port,
		Handler:           http.HandlerFunc(server.route),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	logf("serving https on port %s, certificate sha256 %s, agents %q", p.port, fingerprint, p.agents)
	fail("%v", listener.ListenAndServeTLS("", ""))
}

// readKey is the API key Portainer accepts: the file $STANDIN_API_KEY_FILE (default
// /run/secrets/portainer.apikey), first line. None: every API call is unauthorised.
func readKey() string {
	path := os.Getenv("STANDIN_API_KEY_FILE")
	if path == "" {
		path = "/run/secrets/portainer.apikey"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		logf("no API key (%v): every API call is refused", err)
		return ""
	}
	return strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0])
}

func writeJSON(w http.ResponseWriter, status int, value any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(value)
}

func problem(w http.ResponseWriter, status int, message, details string) {
	writeJSON(w, status, map[string]string{"message": message, "details": details})
}

func (p *portainer) route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	logf("%s %s", r.Method, path) // never the headers: one of them is the key
	switch {
	case path == "/api/system/status":
		hostname, _ := os.Hostname()
		writeJSON(w, http.StatusOK, map[string]string{"Version": version, "InstanceID": hostname})
	case path == "/" || path == "/index.html":
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!doctype html><title>Portainer stand-in</title><p>Portainer stand-in (test double).</p>")
	case !strings.HasPrefix(path, "/api/"):
		http.NotFound(w, r)
	case !p.authorised(r):
		problem(w, http.StatusUnauthorized, "Unauthorized", "A valid authorisation token is missing")
	case path == "/api/endpoints":
		p.endpoints(w, r)
	case strings.HasPrefix(path, dockerPrefix+"/"):
		p.forward(w, r)
	default:
		problem(w, http.StatusNotFound, "Not found", path)
	}
}

func (p *portainer) authorised(r *http.Request) bool {
	given := r.Header.Get("X-API-Key")
	return p.apiKey != "" && subtle.ConstantTimeCompare([]byte(given), []byte(p.apiKey)) == 1
}

func (p *portainer) endpoints(w http.ResponseWriter, r *http.Request) {
	if p.agentHost == "" {
		writeJSON(w, http.StatusOK, []any{})
		return
	}
	status := 2 // down, unless an agent answers
	if nodes, err := p.agents(r.Context()); err == nil && len(nodes) > 0 {
		status = 1
	}
	writeJSON(w, http.StatusOK, []map[string]any{{
		"Id": 1, "Name": "primary", "Type": 2, "Status": status,
		"URL": "tcp://" + net.JoinHostPort(p.agentHost, p.agentPort),
	}})
}

// agents maps node names to the addresses of the agents that answer, discovered at most
// discoveredFor ago.
func (p *portainer) agents(ctx context.Context) (map[string]string, error) {
	p.mu.Lock()
	if time.Since(p.discovered) < discoveredFor {
		live := p.live
		p.mu.Unlock()
		return live, nil
	}
	p.mu.Unlock()
	found, managers, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live, p.discovered = found, time.Now()
	for node, address := range found {
		p.byNode[node] = address
		p.managers[node] = managers[node]
	}
	return found, nil
}

// discover resolves the agent host (tasks.agent: one address per agent task) and asks
// every address which node its agent runs on, and whether that node is a manager.
func (p *portainer) discover(ctx context.Context) (map[string]string, map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, discoverTimeout)
	defer cancel()
	addresses, err := net.DefaultResolver.LookupHost(ctx, p.agentHost)
	if err != nil {
		return nil, nil, err
	}
	found, managers := map[string]string{}, map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, address := range addresses {
		wg.Add(1)
		go func(address string) {
			defer wg.Done()
			var answer struct {
				NodeName string
				Manager  bool
			}
			if p.getJSON(ctx, address, "/standin/node", &answer) == nil && answer.NodeName != "" {
				mu.Lock()
				found[answer.NodeName], managers[answer.NodeName] = address, answer.Manager
				mu.Unlock()
			}
		}(address)
	}
	wg.Wait()
	return found, managers, nil
}

func (p *portainer) getJSON(ctx context.Context, address, path string, into any) error {
	url := "https://" + net.JoinHostPort(address, p.agentPort) + path
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	response, err := p.client.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", response.StatusCode)
	}
	return json.NewDecoder(response.Body).Decode(into)
}

// candidates are the addresses to try for `node`: its agent's, or ("") every agent that
// answered the last discovery, those on managers first (only a manager's Docker answers
// for the cluster, e.g. /nodes: the real agent sends such requests to a manager's agent),
// each group in a stable order.
func (p *portainer) candidates(ctx context.Context, node string) ([]string, error) {
	live, err := p.agents(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %s: %v", p.agentHost, err)
	}
	if node == "" {
		nodes := make([]string, 0, len(live))
		for name := range live {
			nodes = append(nodes, name)
		}
		p.mu.Lock()
		sort.Slice(nodes, func(i, j int) bool {
			if p.managers[nodes[i]] != p.managers[nodes[j]] {
				return p.managers[nodes[i]]
			}
			return nodes[i] < nodes[j]
		})
		p.mu.Unlock()
		addresses := make([]string, 0, len(nodes))
		for _, name := range nodes {
			addresses = append(addresses, live[name])
		}
		if len(addresses) == 0 {
			return nil, fmt.Errorf("no agent at %s answers", p.agentHost)
		}
		return addresses, nil
	}
	if address, ok := live[node]; ok {
		return []string{address}, nil
	}
	p.mu.Lock()
	address, known := p.byNode[node]
	p.mu.Unlock()
	if known { // it answered before: try it, and report what the network says
		return []string{address}, nil
	}
	return nil, fmt.Errorf("no agent on node %s answers at %s", node, p.agentHost)
}

func (p *portainer) forward(w http.ResponseWriter, r *http.Request) {
	if p.agentHost == "" {
		problem(w, http.StatusNotFound, "Environment not found", "no agent given (-H)")
		return
	}
	if r.Method != http.MethodGet {
		problem(w, http.StatusMethodNotAllowed, "Only GET", r.Method)
		return
	}
	node := r.Header.Get(targetHeader)
	addresses, err := p.candidates(r.Context(), node)
	if err != nil {
		problem(w, http.StatusBadGateway, "Unable to find an agent", err.Error())
		return
	}
	var response *http.Response
	for _, address := range addresses {
		upstream := strings.TrimPrefix(r.URL.RequestURI(), dockerPrefix)
		url := "https://" + net.JoinHostPort(address, p.agentPort) + upstream
		request, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, url, nil)
		if node != "" {
			request.Header.Set(targetHeader, node)
		}
		response, err = p.client.Do(request)
		if err == nil {
			break
		}
		p.mu.Lock()
		p.discovered = time.Time{} // an agent stopped answering: discover again next time
		p.mu.Unlock()
	}
	relay(w, response, err, "Unable to proxy the request via the agent")
}

// relay passes an upstream answer on, or a 502 saying why there is none.
func relay(w http.ResponseWriter, response *http.Response, err error, failure string) {
	if err != nil {
		problem(w, http.StatusBadGateway, failure, err.Error())
		return
	}
	defer response.Body.Close()
	w.Header().Set("Content-Type", response.Header.Get("Content-Type"))
	w.WriteHeader(response.StatusCode)
	_, _ = io.Copy(w, response.Body)
}

// -- the agent ---------------------------------------------------------------------------

type agent struct {
	node    string
	manager bool         // the node is a swarm manager (its Docker answers for the cluster)
	docker  *http.Client // nil without the Docker socket
}

func runAgent() {
	a := &agent{}
	if _, err := os.Stat(dockerSocket); err == nil {
		a.docker = &http.Client{
			Timeout: forwardTimeout,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", dockerSocket)
				},
			},
		}
	}
	a.identify()
	port := os.Getenv("AGENT_PORT")
	if port == "" {
		port = "9001"
	}
	certificate, err := selfSigned(a.node)
	if err != nil {
		fail("cannot make a certificate: %v", err)
	}
	server := &http.Server{
		Addr:              ":" + port,
		Handler:           http.HandlerFunc(a.route),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{certificate}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	logf("agent of node %s: https on port %s (self-signed), docker socket %v", a.node, port, a.docker != nil)
	fail("%v", server.ListenAndServeTLS("", ""))
}

// identify learns what Docker calls this node (its hostname) and whether it is a manager,
// as the real agent does; without Docker: $AGENT_NODE_NAME, else the container's hostname.
func (a *agent) identify() {
	if a.docker != nil {
		var info struct {
			Name  string
			Swarm struct{ ControlAvailable bool }
		}
		for attempt := 0; attempt < 10; attempt++ {
			if a.dockerJSON("/info", &info) == nil && info.Name != "" {
				a.node, a.manager = info.Name, info.Swarm.ControlAvailable
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	a.node = os.Getenv("AGENT_NODE_NAME")
	if a.node == "" {
		a.node, _ = os.Hostname()
	}
}

func (a *agent) dockerJSON(path string, into any) error {
	response, err := a.docker.Get("http://docker" + path)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	return json.NewDecoder(response.Body).Decode(into)
}

func (a *agent) route(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get(targetHeader); target != "" && target != a.node {
		problem(w, http.StatusBadGateway, "Wrong agent", "this agent runs on node "+a.node+", not "+target)
		return
	}
	switch {
	case r.URL.Path == "/ping":
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/standin/node":
		writeJSON(w, http.StatusOK, map[string]any{"NodeName": a.node, "Manager": a.manager})
	case r.Method != http.MethodGet:
		problem(w, http.StatusMethodNotAllowed, "Only GET", r.Method)
	case a.docker != nil:
		a.fromDocker(w, r)
	case r.URL.Path == "/info":
		writeJSON(w, http.StatusOK, map[string]any{"Name": a.node, "ServerVersion": version})
	case r.URL.Path == "/nodes":
		writeJSON(w, http.StatusOK, []map[string]any{{
			"ID":          "standin-" + a.node,
			"Description": map[string]string{"Hostname": a.node},
			"Spec":        map[string]string{"Role": "worker", "Availability": "active"},
			"Status":      map[string]string{"State": "ready"},
		}})
	default:
		problem(w, http.StatusNotFound, "Not found", r.URL.Path)
	}
}

func (a *agent) fromDocker(w http.ResponseWriter, r *http.Request) {
	response, err := a.docker.Get("http://docker" + r.URL.RequestURI())
	relay(w, response, err, "Unable to reach Docker")
}

func selfSigned(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "portainer-agent " + name},
		DNSNames:     []string{"portainer-agent", name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
