// Package mail sends authex's messages (email verification, password
// reset): a Sender interface with two transports, SMTP and log, the
// message templates (embedded defaults an operator may override), and a
// small in-memory queue that retries each send with exponential backoff.
//
// It knows nothing of users or the store: exchange decides what to send
// and audits what the queue reports.
package mail

import (
	"context"
	"errors"
	"log/slog"
	"net/mail"
	"strings"
)

// Message is one email to one recipient.
type Message struct {
	To      string // a bare address
	Subject string
	Text    string // the text/plain part
	HTML    string // the text/html part ("" for none)
}

// Sender delivers a message. An error means it was not (or may not have
// been) accepted; the queue retries it.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// checkMessage refuses what could not be put in headers safely.
func checkMessage(m Message) error {
	a, err := mail.ParseAddress(m.To)
	if err != nil || a.Address != m.To {
		return errors.New("mail: recipient is not one bare address")
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("mail: subject holds a line break")
	}
	return nil
}

// Log is the development transport: it writes each message's recipient,
// subject and text (with its link) to the log instead of sending it.
// Never for production: the links it logs are live credentials.
type Log struct {
	Logger *slog.Logger
}

// Send logs m.
func (l Log) Send(ctx context.Context, m Message) error {
	if err := checkMessage(m); err != nil {
		return err
	}
	l.Logger.InfoContext(ctx, "mail (log transport: not sent)", "to", m.To, "subject", m.Subject, "text", m.Text)
	return nil
}
