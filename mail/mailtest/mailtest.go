// Package mailtest runs a real SMTP server in-process (emersion/go-smtp's
// server) for tests: it records every delivered message and can refuse
// deliveries to play a relay that is down.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"
)

// Delivered is one message as the server received it.
type Delivered struct {
	From, To string
	Header   mail.Header
	Text     string // the text/plain part, decoded
	HTML     string // the text/html part, decoded
	Raw      []byte
}

// Server is a running SMTP server on 127.0.0.1.
type Server struct {
	Host string
	Port int
	// Username and Password, when set before Start, are required (AUTH PLAIN).
	Username, Password string

	srv  *smtp.Server
	mu   sync.Mutex
	msgs []Delivered
	down int // refuse this many more DATA commands (451)
	seen chan struct{}
	// Attempts counts MAIL commands, refused or not.
	attempts int
	roots    *x509.CertPool
}

// Mode is how the server speaks TLS.
type Mode int

// Modes.
const (
	Plain    Mode = iota // no TLS
	StartTLS             // STARTTLS offered
	Implicit             // TLS from the first byte
)

// Start runs a server in mode until the test ends.
func Start(t testing.TB, mode Mode) *Server {
	t.Helper()
	s := &Server{seen: make(chan struct{}, 1000)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.AllowInsecureAuth = mode == Plain
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if mode != Plain {
		cfg, roots := selfSigned(t)
		s.roots = roots
		s.srv.TLSConfig = cfg
		if mode == Implicit {
			l = tls.NewListener(l, cfg)
		}
	}
	a := l.Addr().(*net.TCPAddr)
	s.Host, s.Port = "127.0.0.1", a.Port
	go func() { _ = s.srv.Serve(l) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// ClientTLS is a client config that trusts the server's certificate.
func (s *Server) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// FailNext makes the next n deliveries fail with a 451 (a relay that is
// down for a while).
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	s.down = n
	s.mu.Unlock()
}

// Attempts is how many MAIL commands the server has seen.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Messages returns what was delivered so far.
func (s *Server) Messages() []Delivered {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivered(nil), s.msgs...)
}

// WaitFor waits (at most 10 s) until a message to `to` is delivered
// beyond the first skip ones to that address, and returns it.
func (s *Server) WaitFor(t testing.TB, to string, skip int) Delivered {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		n := 0
		for _, m := range s.Messages() {
			if strings.EqualFold(m.To, to) {
				if n == skip {
					return m
				}
				n++
			}
		}
		select {
		case <-s.seen:
		case <-deadline:
			t.Fatalf("no message %d to %s within 10s (got %d messages in all)", skip+1, to, len(s.Messages()))
		}
	}
}

type session struct {
	s        *Server
	from, to string
}

func (se *session) AuthMechanisms() []string {
	if se.s.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != se.s.Username || password != se.s.Password {
			return errors.New("invalid credentials")
		}
		return nil
	}), nil
}

func (se *session) Reset()        { se.from, se.to = "", "" }
func (se *session) Logout() error { return nil }

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	se.s.mu.Lock()
	se.s.attempts++
	se.s.mu.Unlock()
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = to
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.s.mu.Lock()
	if se.s.down > 0 {
		se.s.down--
		se.s.mu.Unlock()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	se.s.mu.Unlock()
	d := Delivered{From: se.from, To: se.to, Raw: raw}
	if m, err := mail.ReadMessage(strings.NewReader(string(raw))); err == nil {
		d.Header = m.Header
		d.Text, d.HTML = parts(m)
	}
	se.s.mu.Lock()
	se.s.msgs = append(se.s.msgs, d)
	se.s.mu.Unlock()
	se.s.seen <- struct{}{}
	return nil
}

// parts decodes a text/plain message or the parts of a
// multipart/alternative one.
func parts(m *mail.Message) (text, html string) {
	mt, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if !strings.HasPrefix(mt, "multipart/") {
		return decodeQP(m.Body), ""
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable itself
		if err != nil {
			return text, html
		}
		b, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
}

func decodeQP(r io.Reader) string {
	b, _ := io.ReadAll(newQP(r))
	return string(b)
}

func selfSigned(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, roots
}

func newQP(r io.Reader) io.Reader { return quotedprintable.NewReader(r) }
