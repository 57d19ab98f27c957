package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a running bin/authex.
type server struct {
	cmd       *exec.Cmd
	base      string
	pprofAddr string
	startup   time.Duration // exec to the first 200 from /healthz
	ready     time.Duration // exec to the first 200 from /readyz (providers discovered)
	exited    chan error
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// boltStorage and pgStorage are the storage section of the config.
func boltStorage(dataPath string) string {
	return fmt.Sprintf(`{ driver: bolt, bolt: { path: %q } }`, dataPath)
}

func pgStorage(dsn, schema string) string {
	return fmt.Sprintf(`{ driver: postgres, postgres: { dsn: %q, schema: %q } }`, dsn, schema)
}

// startServer writes a config (name.yaml in dir) for the store and the
// issuer and starts the binary with its profiling endpoint on loopback.
// The server logs as in production (JSON, info, one line per request) into
// name.log in dir.
func startServer(bin, dir, name, storageConfig, issuerURL string, extraConfig ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	cfg := fmt.Sprintf(`server: { listen: %q, public_url: %q }
storage: %s
tokens: { algorithm: ES256, audience: [ "api" ] }
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ %q ], link_by_email: auto }
clients:
  - { id: %q, secret: %q }
  - { id: %q, secret: %q }
log: { level: info, format: json }
`, addr, base, storageConfig, issuerURL, clientID, webClient, webSecret, apiClient, apiSecret) + strings.Join(extraConfig, "\n")
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "-config", cfgPath, "-pprof", pprofAddr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	s := &server{cmd: cmd, base: base, pprofAddr: pprofAddr, exited: make(chan error, 1)}
	client := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { s.exited <- cmd.Wait(); logFile.Close() }()
	deadline := start.Add(60 * time.Second)
	for s.ready == 0 {
		path := "/readyz"
		if s.startup == 0 {
			path = "/healthz"
		}
		res, err := client.Get(base + path)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				if s.startup == 0 {
					s.startup = time.Since(start)
					continue
				}
				s.ready = time.Since(start)
				break
			}
		}
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("authex exited before it was ready (%v); see %s", err, logPath)
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("authex was not ready within 60s")
		}
		time.Sleep(time.Millisecond)
	}
	return s, nil
}

func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		return err
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		return errors.New("authex did not stop within 20s of SIGTERM")
	}
}

// memory reads VmRSS and its anonymous and file-backed parts (the bbolt
// file is mapped, so pages of it that were read count as RssFile), in KiB.
func (s *server) memory() (rss, anon, file int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = v
		case "RssAnon:":
			anon = v
		case "RssFile:":
			file = v
		}
	}
	return
}
