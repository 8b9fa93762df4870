module phoenix-standin

go 1.19
