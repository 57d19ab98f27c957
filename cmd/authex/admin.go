package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authex/authex/storage/bolt"
)

// The admin subcommands talk to a running authex over /admin/v1 (bbolt's
// file lock keeps a second process out of a running server's file). They
// print tables for people and, with --json, the API's JSON for scripts.

const adminUsage = `Admin commands (talk to a running authex; docs/admin.md):
  authex users list [--email E] [--provider P] [--subject S] [--after ID] [--limit N]
  authex users get ID
  authex users disable ID        disable and revoke every session
  authex users enable ID
  authex users delete ID         erase the user, identities and sessions
  authex users roles ID [ROLE...] [--clear]
                                 show, set (replaces) or clear the roles
  authex sessions list USER_ID
  authex sessions revoke SESSION_ID | --user USER_ID
  authex keys list
  authex keys rotate
  authex keys revoke KID         emergency: out of the JWKS, its tokens refused at once
  authex keys refresh-secrets    list the refresh-token MAC secrets
  authex keys rotate-refresh-secret
                                 new MAC secret; nobody is signed out
  authex keys retire-refresh-secret ID
                                 drop an old MAC secret now (its sessions end)
  authex audit [--user ID] [--type T] [--since T] [--until T] [--limit N]
                                 T: RFC 3339 time or a duration ago (24h)
  authex backup FILE [--force]   stream a consistent copy of the store

Every admin command takes --server URL (env AUTHEX_SERVER, default
http://127.0.0.1:8080) and --json, and reads the admin token from
AUTHEX_ADMIN_TOKEN. It sends the token over plain http only to a loopback
host; --insecure-http sends it to another (a private network you trust).
`

// adminClient is one command's connection settings.
type adminClient struct {
	server string
	shown  string // server for messages: any password in it redacted
	token  string
	json   bool
	http   *http.Client
	stdout io.Writer
}

// adminFlags registers the flags every admin command shares.
func adminFlags(fs *flag.FlagSet, getenv func(string) string) (server *string, asJSON, insecure *bool) {
	def := getenv("AUTHEX_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	server = fs.String("server", def, "base URL of the authex admin API (env AUTHEX_SERVER)")
	asJSON = fs.Bool("json", false, "print the API's JSON instead of a table")
	insecure = fs.Bool("insecure-http", false, "send the admin token over plain http to a host that is not loopback (a private network you trust)")
	return server, asJSON, insecure
}

// adminServer checks --server: an absolute http(s) URL, and plain http
// only to a loopback host unless insecure (the admin token is a Bearer
// token: anyone on the path could use it). It answers the URL to call and
// the one to show, with any password redacted; an error never shows the
// URL as given.
func adminServer(raw string, insecure bool) (server, shown string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not shown: what does not parse as a URL cannot be redacted.
		return "", "", errors.New("--server (or AUTHEX_SERVER) must be an absolute http(s) URL such as http://127.0.0.1:9090")
	}
	shown = strings.TrimSuffix(u.Redacted(), "/")
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) && !insecure {
		return "", "", fmt.Errorf("refusing to send the admin token over plain http to %s: use https, or a loopback address "+
			"(on a private network you trust, --insecure-http sends it anyway)", shown)
	}
	return strings.TrimSuffix(raw, "/"), shown, nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("users get ID --json").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// runAdmin runs one admin command: group is "users", "sessions", "keys",
// "audit" or "backup".
func runAdmin(ctx context.Context, group string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	verb := ""
	if group == "users" || group == "sessions" || group == "keys" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			fmt.Fprint(stderr, adminUsage)
			return flag.ErrHelp
		}
		verb, args = args[0], args[1:]
	}
	name := strings.TrimSpace(group + " " + verb)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	server, asJSON, insecure := adminFlags(fs, getenv)
	var (
		email, provider, subject, after, typ, user, since, until *string
		limit                                                    *int
		clear, force                                             *bool
	)
	switch name {
	case "users list":
		email = fs.String("email", "", "exact email (case-insensitive)")
		provider = fs.String("provider", "", "users with an identity at this provider")
		subject = fs.String("subject", "", "users with an identity of this subject")
		after = fs.String("after", "", "start after this user id (paging)")
		limit = fs.Int("limit", 50, "page size (1..1000)")
	case "users roles":
		clear = fs.Bool("clear", false, "remove every role")
	case "sessions revoke":
		user = fs.String("user", "", "revoke every session of this user")
	case "audit":
		user = fs.String("user", "", "events of this user id")
		typ = fs.String("type", "", "events of this type (user.disabled, key.rotated, ...)")
		since = fs.String("since", "", "from this time (RFC 3339) or this long ago (24h)")
		until = fs.String("until", "", "before this time (RFC 3339) or this long ago")
		limit = fs.Int("limit", 100, "at most this many events")
	case "backup":
		force = fs.Bool("force", false, "replace FILE if it exists")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	want := map[string]int{
		"users list": 0, "users get": 1, "users disable": 1, "users enable": 1, "users delete": 1,
		"sessions list": 1, "keys list": 0, "keys rotate": 0, "audit": 0, "backup": 1,
		"keys revoke": 1, "keys refresh-secrets": 0, "keys rotate-refresh-secret": 0, "keys retire-refresh-secret": 1,
	}
	n, fixed := want[name]
	switch {
	case name == "users roles":
		if len(pos) < 1 {
			return usageError(stderr, "users roles needs a user id")
		}
	case name == "sessions revoke":
		if (len(pos) == 1) == (*user != "") || len(pos) > 1 {
			return usageError(stderr, "sessions revoke needs one SESSION_ID or --user USER_ID")
		}
	case !fixed:
		fmt.Fprintf(stderr, "authex: unknown command %q\n\n", name)
		return usageError(stderr, "")
	case len(pos) != n:
		return usageError(stderr, fmt.Sprintf("%s takes %d argument(s), got %d", name, n, len(pos)))
	}

	token := getenv("AUTHEX_ADMIN_TOKEN")
	if token == "" {
		return errors.New("AUTHEX_ADMIN_TOKEN is not set: export one of the server's admin.tokens")
	}
	base, shown, err := adminServer(*server, *insecure)
	if err != nil {
		return err
	}
	c := &adminClient{server: base, shown: shown, token: token, json: *asJSON,
		http: &http.Client{Timeout: 30 * time.Second, CheckRedirect: refuseRedirect}, stdout: stdout}
	esc := url.PathEscape

	switch name {
	case "users list":
		q := url.Values{}
		for k, v := range map[string]string{"email": *email, "provider": *provider, "subject": *subject, "after": *after} {
			if v != "" {
				q.Set(k, v)
			}
		}
		q.Set("limit", fmt.Sprint(*limit))
		return c.call(ctx, http.MethodGet, "/admin/v1/users?"+q.Encode(), nil, printUsers)
	case "users get":
		return c.call(ctx, http.MethodGet, "/admin/v1/users/"+esc(pos[0]), nil, printUser)
	case "users disable":
		return c.call(ctx, http.MethodPost, "/admin/v1/users/"+esc(pos[0])+"/disable", nil, printDisabled)
	case "users enable":
		return c.call(ctx, http.MethodPost, "/admin/v1/users/"+esc(pos[0])+"/enable", nil, printDisabled)
	case "users delete":
		return c.call(ctx, http.MethodDelete, "/admin/v1/users/"+esc(pos[0]), nil, func(w io.Writer, raw []byte) error {
			fmt.Fprintf(w, "deleted user %s\n", pos[0])
			return nil
		})
	case "users roles":
		if len(pos) == 1 && !*clear {
			return c.call(ctx, http.MethodGet, "/admin/v1/users/"+esc(pos[0]), nil, printRoles)
		}
		if *clear && len(pos) > 1 {
			return usageError(stderr, "users roles: give roles or --clear, not both")
		}
		roles := append([]string{}, pos[1:]...)
		return c.call(ctx, http.MethodPut, "/admin/v1/users/"+esc(pos[0])+"/roles", map[string]any{"roles": roles}, printRoles)
	case "sessions list":
		return c.call(ctx, http.MethodGet, "/admin/v1/users/"+esc(pos[0])+"/sessions", nil, printSessions)
	case "sessions revoke":
		if *user != "" {
			return c.call(ctx, http.MethodDelete, "/admin/v1/users/"+esc(*user)+"/sessions", nil, printRevoked)
		}
		return c.call(ctx, http.MethodDelete, "/admin/v1/sessions/"+esc(pos[0]), nil, printRevoked)
	case "keys list":
		return c.call(ctx, http.MethodGet, "/admin/v1/keys", nil, printKeys)
	case "keys rotate":
		return c.call(ctx, http.MethodPost, "/admin/v1/keys/rotate", nil, printRotated)
	case "keys revoke":
		return c.call(ctx, http.MethodPost, "/admin/v1/keys/"+esc(pos[0])+"/revoke", nil, printRevokedKey)
	case "keys refresh-secrets":
		return c.call(ctx, http.MethodGet, "/admin/v1/secrets/refresh", nil, printRefreshSecrets)
	case "keys rotate-refresh-secret":
		return c.call(ctx, http.MethodPost, "/admin/v1/secrets/refresh/rotate", nil, printRotatedRefreshSecret)
	case "keys retire-refresh-secret":
		return c.call(ctx, http.MethodPost, "/admin/v1/secrets/refresh/"+esc(pos[0])+"/retire", nil, func(w io.Writer, raw []byte) error {
			fmt.Fprintf(w, "refresh secret %s retired: sessions whose current token it made must sign in again\n", pos[0])
			return nil
		})
	case "audit":
		q := url.Values{}
		if *user != "" {
			q.Set("user_id", *user)
		}
		if *typ != "" {
			q.Set("type", *typ)
		}
		for k, v := range map[string]string{"since": *since, "until": *until} {
			if v == "" {
				continue
			}
			t, err := parseWhen(v, time.Now())
			if err != nil {
				return fmt.Errorf("--%s: %w", k, err)
			}
			q.Set(k, t.UTC().Format(time.RFC3339))
		}
		q.Set("limit", fmt.Sprint(*limit))
		return c.call(ctx, http.MethodGet, "/admin/v1/audit?"+q.Encode(), nil, printAudit)
	case "backup":
		return c.backup(ctx, pos[0], *force)
	}
	return nil
}

func usageError(stderr io.Writer, msg string) error {
	if msg != "" {
		fmt.Fprintf(stderr, "authex: %s\n\n", msg)
	}
	fmt.Fprint(stderr, adminUsage)
	return flag.ErrHelp
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like 24h", v)
	}
	return now.Add(-d), nil
}

// apiError is the server's one error shape.
type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Reason      string `json:"reason"`
	RequestID   string `json:"request_id"`
}

// do sends one request and returns the response; it turns the failures
// an operator meets (server down, wrong token) into plain sentences.
func (c *adminClient) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return nil, fmt.Errorf("cannot make a request to %s for %s", c.shown, path) // err would show the URL as given
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		var oe *net.OpError
		if errors.As(err, &oe) || errors.As(err, &ne) {
			return nil, fmt.Errorf("cannot reach authex at %s (%v): is it running, and is --server (or AUTHEX_SERVER) its admin address?", c.shown, rootCause(err))
		}
		return nil, fmt.Errorf("request to %s failed: %v", c.shown, err)
	}
	if res.StatusCode < 300 {
		return res, nil
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var e apiError
	if json.Unmarshal(raw, &e) != nil || e.Error == "" {
		return nil, fmt.Errorf("%s %s: HTTP %d from %s (is it authex?)", method, path, res.StatusCode, c.shown)
	}
	if res.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("the admin token was refused (%s): %s; set AUTHEX_ADMIN_TOKEN to one of the server's admin.tokens", e.Reason, e.Description)
	}
	if res.StatusCode == http.StatusNotFound && e.Reason == "" {
		return nil, fmt.Errorf("%s has no admin API at %s (HTTP 404): is admin_listen set? use --server with that address", c.shown, path)
	}
	msg := e.Description
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return nil, fmt.Errorf("%s [request %s]", msg, e.RequestID)
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// call does one JSON request and prints the answer: raw JSON with --json,
// else through print.
func (c *adminClient) call(ctx context.Context, method, path string, body any, print func(io.Writer, []byte) error) error {
	res, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if c.json {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := c.stdout.Write(buf.Bytes())
		return err
	}
	return print(c.stdout, raw)
}

// backup downloads next to FILE, checks the copy is a whole authex store,
// then renames it into place: FILE is never a partial copy.
func (c *adminClient) backup(ctx context.Context, file string, force bool) error {
	if _, err := os.Stat(file); err == nil && !force {
		return fmt.Errorf("%s exists; use --force to replace it", file)
	}
	c.http.Timeout = 0 // a large store takes a while; ctx (Ctrl-C) still stops it
	res, err := c.do(ctx, http.MethodGet, "/admin/v1/backup", nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, res.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup transfer failed after %d bytes: %w", n, err)
	}
	if err := bolt.Verify(tmp.Name()); err != nil {
		return fmt.Errorf("the copy is not a whole store, %s left as it was: %w", file, err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	if c.json {
		return json.NewEncoder(c.stdout).Encode(map[string]any{"file": file, "bytes": n, "verified": true})
	}
	fmt.Fprintf(c.stdout, "wrote %s (%d bytes, verified)\n", file, n)
	return nil
}

type cliIdentity struct {
	Provider string `json:"provider"`
	Subject  string `json:"subject"`
	Email    string `json:"email"`
}

type cliUser struct {
	ID            string        `json:"id"`
	Email         string        `json:"email"`
	EmailVerified bool          `json:"email_verified"`
	Name          string        `json:"name"`
	Roles         []string      `json:"roles"`
	Disabled      bool          `json:"disabled"`
	CreatedAt     time.Time     `json:"created_at"`
	Identities    []cliIdentity `json:"identities"`
}

func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func status(disabled bool) string {
	if disabled {
		return "disabled"
	}
	return "active"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func printUsers(w io.Writer, raw []byte) error {
	var out struct {
		Users     []cliUser `json:"users"`
		NextAfter string    `json:"next_after"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := make([][]string, 0, len(out.Users))
	for _, u := range out.Users {
		rows = append(rows, []string{u.ID, dash(u.Email), dash(u.Name), status(u.Disabled), dash(strings.Join(u.Roles, ",")), when(u.CreatedAt)})
	}
	table(w, "ID\tEMAIL\tNAME\tSTATUS\tROLES\tCREATED", rows)
	if out.NextAfter != "" {
		fmt.Fprintf(w, "\nmore: --after %s\n", out.NextAfter)
	}
	return nil
}

func printUser(w io.Writer, raw []byte) error {
	var u cliUser
	if err := json.Unmarshal(raw, &u); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	verified := ""
	if u.EmailVerified {
		verified = " (verified)"
	}
	fmt.Fprintf(tw, "id:\t%s\nemail:\t%s%s\nname:\t%s\nstatus:\t%s\nroles:\t%s\ncreated:\t%s\n",
		u.ID, dash(u.Email), verified, dash(u.Name), status(u.Disabled), dash(strings.Join(u.Roles, ",")), when(u.CreatedAt))
	tw.Flush()
	if len(u.Identities) > 0 {
		fmt.Fprintln(w)
		rows := make([][]string, 0, len(u.Identities))
		for _, id := range u.Identities {
			rows = append(rows, []string{id.Provider, id.Subject, dash(id.Email)})
		}
		table(w, "PROVIDER\tSUBJECT\tEMAIL", rows)
	}
	return nil
}

func printDisabled(w io.Writer, raw []byte) error {
	var out struct {
		User    cliUser `json:"user"`
		Revoked int     `json:"revoked_sessions"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	if out.User.Disabled {
		fmt.Fprintf(w, "user %s disabled; %d session(s) revoked\n", out.User.ID, out.Revoked)
	} else {
		fmt.Fprintf(w, "user %s enabled\n", out.User.ID)
	}
	return nil
}

func printRoles(w io.Writer, raw []byte) error {
	var u cliUser
	if err := json.Unmarshal(raw, &u); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s roles: %s\n", u.ID, dash(strings.Join(u.Roles, ",")))
	return nil
}

func printSessions(w io.Writer, raw []byte) error {
	var out struct {
		Sessions []struct {
			ID            string    `json:"id"`
			Provider      string    `json:"provider"`
			Active        bool      `json:"active"`
			CreatedAt     time.Time `json:"created_at"`
			RotatedAt     time.Time `json:"rotated_at"`
			RevokedReason string    `json:"revoked_reason"`
			IP            string    `json:"ip"`
			UserAgent     string    `json:"user_agent"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, s := range out.Sessions {
		st := "active"
		if !s.Active {
			st = "ended"
			if s.RevokedReason != "" {
				st = "revoked (" + s.RevokedReason + ")"
			}
		}
		ua := s.UserAgent
		if len(ua) > 40 {
			ua = ua[:40] + "..."
		}
		rows = append(rows, []string{s.ID, dash(s.Provider), st, when(s.CreatedAt), when(s.RotatedAt), dash(s.IP), dash(ua)})
	}
	table(w, "ID\tPROVIDER\tSTATUS\tCREATED\tLAST REFRESH\tIP\tUSER AGENT", rows)
	return nil
}

func printRevoked(w io.Writer, raw []byte) error {
	var out struct {
		Revoked int `json:"revoked"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d session(s) revoked\n", out.Revoked)
	return nil
}

type cliKey struct {
	ID        string    `json:"id"`
	Algorithm string    `json:"algorithm"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	NotBefore time.Time `json:"not_before"`
	RetiredAt time.Time `json:"retired_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func printKeys(w io.Writer, raw []byte) error {
	var out struct {
		Keys []cliKey `json:"keys"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, k := range out.Keys {
		rows = append(rows, []string{k.ID, k.Algorithm, k.State, when(k.CreatedAt), when(k.NotBefore), when(k.RetiredAt), when(k.ExpiresAt)})
	}
	table(w, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRED\tLEAVES JWKS", rows)
	return nil
}

func printRotated(w io.Writer, raw []byte) error {
	var out struct {
		Key cliKey `json:"key"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	fmt.Fprintf(w, "new key %s (%s) is in the JWKS now and signs from %s; the previous key stays published until its tokens expire\n",
		out.Key.ID, out.Key.Algorithm, when(out.Key.NotBefore))
	return nil
}

func printRevokedKey(w io.Writer, raw []byte) error {
	var out struct {
		Key         cliKey  `json:"key"`
		Replacement *cliKey `json:"replacement"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	fmt.Fprintf(w, "key %s revoked: out of the JWKS, and the tokens it signed are refused\n", out.Key.ID)
	if out.Replacement != nil {
		fmt.Fprintf(w, "new key %s (%s) signs from now on\n", out.Replacement.ID, out.Replacement.Algorithm)
	}
	return nil
}

type cliRefreshSecret struct {
	ID         string    `json:"id"`
	State      string    `json:"state"`
	ActiveFrom time.Time `json:"active_from"`
	RetiresAt  time.Time `json:"retires_at"`
}

func printRefreshSecrets(w io.Writer, raw []byte) error {
	var out struct {
		Secrets []cliRefreshSecret `json:"secrets"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, s := range out.Secrets {
		rows = append(rows, []string{s.ID, s.State, when(s.ActiveFrom), when(s.RetiresAt)})
	}
	table(w, "ID\tSTATE\tSIGNS FROM\tDELETED AT", rows)
	return nil
}

func printRotatedRefreshSecret(w io.Writer, raw []byte) error {
	var out struct {
		Secret cliRefreshSecret `json:"secret"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	fmt.Fprintf(w, "new refresh secret %s signs from %s; tokens of the older secrets keep refreshing\n", out.Secret.ID, when(out.Secret.ActiveFrom))
	return nil
}

func printAudit(w io.Writer, raw []byte) error {
	var out struct {
		Events []struct {
			Time      time.Time `json:"time"`
			Type      string    `json:"type"`
			UserID    string    `json:"user_id"`
			SessionID string    `json:"session_id"`
			Provider  string    `json:"provider"`
			Detail    string    `json:"detail"`
		} `json:"events"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, e := range out.Events {
		rows = append(rows, []string{when(e.Time), e.Type, dash(e.UserID), dash(e.Provider), dash(e.Detail)})
	}
	table(w, "TIME\tTYPE\tUSER\tPROVIDER\tDETAIL", rows)
	return nil
}

// refuseRedirect keeps the admin token from following a redirect: Go
// resends Authorization to the same host, even from https to plain http.
func refuseRedirect(req *http.Request, via []*http.Request) error {
	return fmt.Errorf("the server redirected to %s; point --server at the admin API itself", req.URL.Redacted())
}
