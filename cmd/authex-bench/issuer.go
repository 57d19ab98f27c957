package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authex/authex/providers/emulator"
)

// issuer is the project's OpenID Connect emulator on loopback: discovery
// and a JWKS for one RSA-2048 key, and RS256 id_tokens minted ahead of the
// load so that minting never competes with the server for CPU during a
// measurement.
type issuer struct {
	url string
	emu *emulator.Emulator
	srv *http.Server
}

// The provider's client id (the id_tokens' audience), and our clients: the
// web app that exchanges and the API that introspects, both confidential,
// as a production deployment would configure them.
const (
	clientID  = "bench"
	webClient = "nextjs"
	webSecret = "bench-web-secret-0123456789"
	apiClient = "api-gateway"
	apiSecret = "bench-api-secret-0123456789"
)

func startIssuer() (*issuer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	url := "http://" + ln.Addr().String()
	emu, err := emulator.New(emulator.Config{Issuer: url, ClientIDs: []string{clientID}, TokenTTL: 3 * time.Hour})
	if err != nil {
		ln.Close()
		return nil, err
	}
	iss := &issuer{url: url, emu: emu, srv: &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}}
	go iss.srv.Serve(ln)
	return iss, nil
}

func (iss *issuer) close() { iss.srv.Close() }

// subject names user i; the store is pre-populated with the same names.
func subject(i int) string { return fmt.Sprintf("user-%08d", i) }

func email(sub string) string { return sub + "@bench.example.com" }

func (iss *issuer) mint(sub string) (string, error) {
	return iss.emu.Sign(emulator.Claims{"sub": sub, "email": email(sub), "email_verified": true, "name": "Bench " + sub})
}

// mintBodies returns ready /v1/exchange bodies for the subjects, minted on
// every CPU.
func (iss *issuer) mintBodies(subjects []string) ([][]byte, error) {
	out := make([][]byte, len(subjects))
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(subjects) {
					return
				}
				tok, err := iss.mint(subjects[i])
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				out[i], _ = json.Marshal(map[string]string{"provider": "corp", "id_token": tok,
					"client_id": webClient, "client_secret": webSecret})
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}
