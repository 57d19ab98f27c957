// Command auditcheck reads a stopped authex's bbolt file after the browser
// end-to-end test and fails when authex recorded a refresh token reuse
// (which revokes the session: concurrent refreshes must never cause one).
// It prints every audit event, for the log.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

func main() {
	db := flag.String("db", "", "path of the bbolt file (authex must be stopped)")
	flag.Parse()
	store, err := bolt.Open(*db, bolt.Options{SweepInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "auditcheck:", err)
		os.Exit(2)
	}
	defer store.Close()
	events, err := store.ListAudit(context.Background(), storage.AuditFilter{Limit: 100000})
	if err != nil {
		fmt.Fprintln(os.Stderr, "auditcheck:", err)
		os.Exit(2)
	}
	reused := 0
	for i := len(events) - 1; i >= 0; i-- { // oldest first
		e := events[i]
		fmt.Printf("audit %s %-16s user=%s session=%s provider=%s %s\n", e.Time.Format("15:04:05.000"), e.Type, e.UserID, e.SessionID, e.Provider, e.Detail)
		if e.Type == "session.reused" {
			reused++
		}
	}
	if reused > 0 {
		fmt.Fprintf(os.Stderr, "auditcheck: %d refresh token reuse(s) recorded: a session was revoked as stolen\n", reused)
		os.Exit(1)
	}
	fmt.Printf("auditcheck: %d audit events, no session.reused\n", len(events))
}
