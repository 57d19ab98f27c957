// Command auditcheck reads a stopped authex's bbolt file after the browser
// end-to-end test and fails when authex recorded a refresh token reuse
// (which revokes the session: concurrent refreshes must never cause one),
// or when an event type named by -require is missing (the e2e requires
// nonce.attested: the sign-ins went through the verifies_nonce path). It
// prints every audit event, for the log.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

func main() {
	db := flag.String("db", "", "path of the bbolt file (authex must be stopped)")
	require := flag.String("require", "", "comma-separated audit event types that must occur at least once")
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
	seen := map[string]int{}
	for i := len(events) - 1; i >= 0; i-- { // oldest first
		e := events[i]
		fmt.Printf("audit %s %-16s user=%s session=%s provider=%s %s\n", e.Time.Format("15:04:05.000"), e.Type, e.UserID, e.SessionID, e.Provider, e.Detail)
		seen[string(e.Type)]++
		if e.Type == "session.reused" {
			reused++
		}
	}
	for _, t := range strings.Split(*require, ",") {
		if t != "" && seen[t] == 0 {
			fmt.Fprintf(os.Stderr, "auditcheck: no %s event recorded\n", t)
			os.Exit(1)
		}
	}
	if reused > 0 {
		fmt.Fprintf(os.Stderr, "auditcheck: %d refresh token reuse(s) recorded: a session was revoked as stolen\n", reused)
		os.Exit(1)
	}
	fmt.Printf("auditcheck: %d audit events, no session.reused\n", len(events))
}
