package main

import (
	"bufio"
	"bytes"
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
	// backends, on PostgreSQL, is the CPU ticks of the server's backends.
	backends func() int64
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer writes a config for the data file and the issuer and starts
// the binary with its profiling endpoint on loopback. The server logs as in
// production (JSON, info, one line per request) into a file in dir.
func startServer(bin, dir, dataPath, issuerURL string, extraConfig ...string) (*server, error) {
	return startServerOn(bin, dir, fmt.Sprintf("storage: { driver: bolt, bolt: { path: %q } }", dataPath), issuerURL, extraConfig...)
}

// startServerOn is startServer with the config's storage block.
func startServerOn(bin, dir, storageYAML, issuerURL string, extraConfig ...string) (*server, error) {
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
%s
tokens: { algorithm: ES256, audience: [ "api" ] }
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ %q ], link_by_email: auto }
clients:
  - { id: %q, secret: %q }
  - { id: %q, secret: %q }
log: { level: info, format: json }
`, addr, base, storageYAML, issuerURL, clientID, webClient, webSecret, apiClient, apiSecret) + strings.Join(extraConfig, "\n")
	cfgPath := filepath.Join(dir, "authex.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "authex.log"))
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
			return nil, fmt.Errorf("authex exited before it was ready (%v); see %s", err, filepath.Join(dir, "authex.log"))
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

// cpuTicks is the server's user+system CPU time so far, in clock ticks
// (fields 14 and 15 of /proc/PID/stat).
func (s *server) cpuTicks() (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; count from the last ')'.
	rest := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(rest) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(rest[11], 10, 64)
	stime, err2 := strconv.ParseInt(rest[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	if s.backends != nil {
		return utime + stime + s.backends(), nil
	}
	return utime + stime, nil
}

// clockTicks is USER_HZ: 100 on every Linux this runs on.
const clockTicks = 100

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
