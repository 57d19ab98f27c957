package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errExhausted ends a worker whose phase ran out of pre-minted input.
var errExhausted = errors.New("input exhausted")

// clients are one HTTP client per connection: a closed loop, each client
// sends its next request when the previous answer is read, on one
// keep-alive connection.
type clients []*http.Client

func newClients(n int) clients {
	cs := make(clients, n)
	for i := range cs {
		cs[i] = &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true,
				IdleConnTimeout: time.Minute,
			},
		}
	}
	return cs
}

func (cs clients) close() {
	for _, c := range cs {
		c.Transport.(*http.Transport).CloseIdleConnections()
	}
}

// op sends one request as worker w and reports whether it failed.
type op func(w int, c *http.Client) error

// result is one phase of one run.
type result struct {
	requests, errors int
	elapsed          time.Duration
	p50, p99         time.Duration
	cpu              time.Duration // server CPU (user+system) during the phase, authex and database
	cpuDB            time.Duration // of it, the PostgreSQL backends'
	rssKiB, anonKiB  int64         // the largest authex process's, at the end of the phase
	firstErr         error
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPer1k is server CPU-seconds per 1,000 requests (milliseconds per request).
func (r result) cpuPer1k() float64 {
	if r.requests == 0 {
		return 0
	}
	return r.cpu.Seconds() / float64(r.requests) * 1000
}

// cpuUS and cpuDBUS are CPU microseconds per request: everything, and the
// database backends' part of it.
func (r result) cpuUS() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / float64(r.requests)
}

func (r result) cpuDBUS() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.cpuDB.Microseconds()) / float64(r.requests)
}

// drive runs op on every client for d (or until its input runs out) and
// measures the deployment around it.
func drive(dep *deployment, cs clients, d time.Duration, do op) result {
	lat := make([][]time.Duration, len(cs))
	errs := make([]int, len(cs))
	var firstErr error
	var once sync.Once
	cpu0 := dep.sampleCPU()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	var last atomic.Int64
	for w := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := do(w, cs[w])
				if errors.Is(err, errExhausted) {
					break
				}
				l = append(l, time.Since(t0))
				if err != nil {
					errs[w]++
					once.Do(func() { firstErr = err })
				}
			}
			end := int64(time.Since(start))
			for {
				cur := last.Load()
				if end <= cur || last.CompareAndSwap(cur, end) {
					break
				}
			}
			lat[w] = l
		}()
	}
	wg.Wait()
	cpu1 := dep.sampleCPU()
	var all []time.Duration
	r := result{elapsed: time.Duration(last.Load()), firstErr: firstErr}
	for w := range cs {
		all = append(all, lat[w]...)
		r.errors += errs[w]
	}
	r.requests = len(all)
	slices.Sort(all)
	if len(all) > 0 {
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	r.cpu, r.cpuDB = cpuSince(cpu0, cpu1)
	for _, srv := range dep.servers {
		rss, anon, _ := srv.memory()
		r.rssKiB, r.anonKiB = max(r.rssKiB, rss), max(r.anonKiB, anon)
	}
	return r
}

func post(c *http.Client, url string, body []byte, out any) error {
	res, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	return read(res, out)
}

func get(c *http.Client, url, bearer string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	return read(res, nil)
}

// introspect asks about an access token as a resource server would: form
// body, HTTP Basic, and the answer must say active.
func introspect(c *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("token="+token))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(apiClient, apiSecret)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	var in struct {
		Active bool `json:"active"`
	}
	if err := read(res, &in); err != nil {
		return err
	}
	if !in.Active {
		return errors.New("introspect: token is not active")
	}
	return nil
}

func read(res *http.Response, out any) error {
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", res.Request.Method, res.Request.URL.Path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// tokenPair is the part of a token answer the load generator keeps.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// refreshBody is a refresh by the web app, which authenticates as the
// confidential client it is.
func refreshBody(token string) []byte {
	b := append([]byte(`{"refresh_token":"`), token...)
	return append(b, `","client_id":"`+webClient+`","client_secret":"`+webSecret+`"}`...)
}
