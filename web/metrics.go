package web

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// Metrics holds authex's Prometheus series in a registry of its own (not
// the global one, so two servers in one test process never collide). It
// implements exchange.Observer; its KeyFetched and Committed methods are the
// callbacks providers.Config.KeyFetched and observed.Wrap take.
//
// The users and active sessions gauges are computed at scrape time: users
// from the store's counter (one read), active sessions by a scan where the
// store can count them (storage.SessionCounter), cached for
// sessionCountTTL so frequent scrapes cost one scan per period.
type Metrics struct {
	// Now is the clock sessions are counted against: the exchange
	// service's, which stamps them (nil: time.Now).
	Now func() time.Time

	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	exchanges  *prometheus.CounterVec
	refreshes  *prometheus.CounterVec
	keyFetches *prometheus.CounterVec
	commits    *prometheus.HistogramVec
	commitErrs *prometheus.CounterVec
	hookCalls  *prometheus.CounterVec

	store   storage.Store
	mu      sync.Mutex
	counted time.Time
	active  float64
}

const sessionCountTTL = 10 * time.Second

// NewMetrics creates the registry and every series. store feeds the users
// and active sessions gauges; nil leaves them out.
func NewMetrics(store storage.Store) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), store: store}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authex_http_requests_total", Help: "HTTP requests by route template, method and status.",
	}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authex_http_request_duration_seconds", Help: "HTTP request latency by route template and method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method"})
	m.exchanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authex_exchanges_total", Help: "Exchanges by provider and outcome (ok, created, or the refusal's reason).",
	}, []string{"provider", "outcome"})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authex_refreshes_total", Help: "Refreshes by outcome (rotated, grace, reused, expired, revoked, ...).",
	}, []string{"outcome"})
	m.keyFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authex_provider_key_fetches_total", Help: "Fetches of providers' key sets by provider and result (ok, error).",
	}, []string{"provider", "result"})
	m.commits = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authex_store_commit_duration_seconds", Help: "Store write latency (transaction and fsync) by operation.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"op"})
	m.commitErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authex_store_commit_errors_total", Help: "Store writes that returned an error, by operation (a lost compare-and-swap counts).",
	}, []string{"op"})
	m.hookCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authex_claims_hook_total", Help: "Claims hook answers by outcome (ok, cached, failed).",
	}, []string{"outcome"})
	m.reg.MustRegister(m.hookCalls)
	m.reg.MustRegister(m.requests, m.latency, m.exchanges, m.refreshes, m.keyFetches, m.commits, m.commitErrs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if store != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authex_users", Help: "Users in the store.",
		}, m.countUsers))
		if _, ok := storage.As[storage.SessionCounter](store); ok {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "authex_active_sessions", Help: "Live sessions (not revoked, not expired); refreshed at most every 10s.",
			}, m.countSessions))
		}
	}
	return m
}

var _ exchange.Observer = (*Metrics)(nil)
var _ exchange.HookObserver = (*Metrics)(nil)

// ClaimsHook counts one claims hook answer.
func (m *Metrics) ClaimsHook(outcome string) { m.hookCalls.WithLabelValues(outcome).Inc() }

// Exchanged counts one exchange.
func (m *Metrics) Exchanged(provider, outcome string) {
	m.exchanges.WithLabelValues(provider, outcome).Inc()
}

// Refreshed counts one refresh.
func (m *Metrics) Refreshed(outcome string) { m.refreshes.WithLabelValues(outcome).Inc() }

// KeyFetched returns the providers.Config.KeyFetched callback of one provider.
func (m *Metrics) KeyFetched(provider string) func(error) {
	ok, failed := m.keyFetches.WithLabelValues(provider, "ok"), m.keyFetches.WithLabelValues(provider, "error")
	return func(err error) {
		if err != nil {
			failed.Inc()
			return
		}
		ok.Inc()
	}
}

// Committed records one store write (the observed.CommitFunc).
func (m *Metrics) Committed(op string, took time.Duration, err error) {
	m.commits.WithLabelValues(op).Observe(took.Seconds())
	if err != nil {
		m.commitErrs.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) countUsers() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := m.store.CountUsers(ctx)
	if err != nil {
		return -1
	}
	return float64(n)
}

func (m *Metrics) countSessions() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.counted.IsZero() && time.Since(m.counted) < sessionCountTTL {
		return m.active
	}
	c, _ := storage.As[storage.SessionCounter](m.store)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	n, err := c.CountActiveSessions(ctx, now())
	if err != nil {
		return m.active
	}
	m.counted, m.active = time.Now(), float64(n)
	return m.active
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// middleware counts every request by its route template (never the raw
// path, so ids and probes cannot grow the label set).
func (m *Metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" || c.Response().Status == http.StatusNotFound && route == "/*" {
			route = "unmatched"
		}
		method := c.Request().Method
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
			http.MethodDelete, http.MethodOptions:
		default:
			method = "other"
		}
		m.requests.WithLabelValues(route, method, strconv.Itoa(c.Response().Status)).Inc()
		m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		return nil
	}
}
