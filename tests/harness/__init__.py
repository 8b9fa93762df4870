"""The real test harness: Docker Swarm, the Portainer stand-in, Pebble and certbot."""
