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
	"github.com/authex/authex/web"
)

// The admin subcommands talk to a running authex over /admin/v1 (bbolt's
// file lock keeps a second process out of a running server's file). They
// print tables for people and, with --json, the API's JSON for scripts.

const adminUsage = `Admin commands (talk to a running authex; docs/admin.md):
  authex users list [--email E] [--username U] [--provider P] [--subject S] [--after ID] [--limit N]
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
  authex webhooks list [--failed] [--limit N]
                                 pending (or failed) webhook deliveries
  authex webhooks replay ENDPOINT ID
                                 deliver one again (docs/events.md)

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
	stderr io.Writer
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
// positional arguments ("users get ID --json"). An argument that starts
// with a single "-" but names no flag of the command is positional:
// session ids and other base64url ids may start with "-" ("sessions
// revoke -nJDl2ex"). After "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos, flags []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(arg) < 2 || arg[0] != '-' || looksLikeIDNotFlag(fs, arg) {
			pos = append(pos, arg)
			continue
		}
		flags = append(flags, arg)
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if f := fs.Lookup(name); f != nil && !hasValue && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return append(pos, fs.Args()...), nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// looksLikeIDNotFlag reports whether arg, which starts with "-" and is
// longer than that, starts with a single "-" yet is no flag of fs (nor
// -h/-help, which print the usage). Flags spelled with two dashes are never
// taken for an id.
func looksLikeIDNotFlag(fs *flag.FlagSet, arg string) bool {
	if arg[1] == '-' {
		return false
	}
	name, _, _ := strings.Cut(arg[1:], "=")
	return fs.Lookup(name) == nil && name != "h" && name != "help"
}

// adminOpts holds every admin command's own flags; a command registers
// the ones it reads.
type adminOpts struct {
	email, provider, subject, after, typ, user, since, until string
	username                                                 string
	limit                                                    int
	clear, force                                             bool
	failed                                                   bool // webhooks list
}

// adminCommand is one admin command.
type adminCommand struct {
	args  int                                     // positional arguments it takes; -1: check says
	check func(o *adminOpts, pos []string) string // for args -1: the usage problem, or ""
	flags func(fs *flag.FlagSet, o *adminOpts)
	run   func(ctx context.Context, c *adminClient, o *adminOpts, pos []string) error
}

// apiGet and apiPost make a command that calls one admin endpoint; path
// builds the endpoint's path from the positional arguments.
func apiGet(path func(pos []string) string, print func(io.Writer, []byte) error) func(context.Context, *adminClient, *adminOpts, []string) error {
	return apiCall(http.MethodGet, path, print)
}

func apiPost(path func(pos []string) string, print func(io.Writer, []byte) error) func(context.Context, *adminClient, *adminOpts, []string) error {
	return apiCall(http.MethodPost, path, print)
}

func apiCall(method string, path func(pos []string) string, print func(io.Writer, []byte) error) func(context.Context, *adminClient, *adminOpts, []string) error {
	return func(ctx context.Context, c *adminClient, _ *adminOpts, pos []string) error {
		return c.call(ctx, method, path(pos), nil, print)
	}
}

// apiConfirm makes a command whose endpoint's answer is not shown: it
// prints the line confirm builds from the positional arguments instead.
func apiConfirm(method string, path, confirm func(pos []string) string) func(context.Context, *adminClient, *adminOpts, []string) error {
	return func(ctx context.Context, c *adminClient, _ *adminOpts, pos []string) error {
		return c.call(ctx, method, path(pos), nil, func(w io.Writer, _ []byte) error {
			fmt.Fprintln(w, confirm(pos))
			return nil
		})
	}
}

// at answers a path builder: "/admin/v1" + prefix + the escaped first
// argument + suffix (no argument: prefix alone).
func at(prefix, suffix string) func(pos []string) string {
	return func(pos []string) string {
		if len(pos) == 0 {
			return "/admin/v1" + prefix
		}
		return "/admin/v1" + prefix + url.PathEscape(pos[0]) + suffix
	}
}

// adminCommands maps "group verb" (or the group alone) to its command.
var adminCommands = map[string]adminCommand{
	"users list": {args: 0, flags: func(fs *flag.FlagSet, o *adminOpts) {
		fs.StringVar(&o.email, "email", "", "exact email (case-insensitive)")
		fs.StringVar(&o.username, "username", "", "exact username (ASCII case-insensitive)")
		fs.StringVar(&o.provider, "provider", "", "users with an identity at this provider")
		fs.StringVar(&o.subject, "subject", "", "users with an identity of this subject")
		fs.StringVar(&o.after, "after", "", "start after this user id (paging)")
		fs.IntVar(&o.limit, "limit", 50, "page size (1..1000)")
	}, run: runUsersList},
	"users get":     {args: 1, run: apiGet(at("/users/", ""), printUser)},
	"users disable": {args: 1, run: apiPost(at("/users/", "/disable"), printDisabled)},
	"users enable":  {args: 1, run: apiPost(at("/users/", "/enable"), printDisabled)},
	"users delete": {args: 1, run: apiConfirm(http.MethodDelete, at("/users/", ""), func(pos []string) string {
		return "deleted user " + pos[0]
	})},
	"users roles": {args: -1, check: func(_ *adminOpts, pos []string) string {
		if len(pos) < 1 {
			return "users roles needs a user id"
		}
		return ""
	}, flags: func(fs *flag.FlagSet, o *adminOpts) {
		fs.BoolVar(&o.clear, "clear", false, "remove every role")
	}, run: runUsersRoles},
	"sessions list": {args: 1, run: apiGet(at("/users/", "/sessions"), printSessions)},
	"sessions revoke": {args: -1, check: func(o *adminOpts, pos []string) string {
		if (len(pos) == 1) == (o.user != "") || len(pos) > 1 {
			return "sessions revoke needs one SESSION_ID or --user USER_ID"
		}
		return ""
	}, flags: func(fs *flag.FlagSet, o *adminOpts) {
		fs.StringVar(&o.user, "user", "", "revoke every session of this user")
	}, run: func(ctx context.Context, c *adminClient, o *adminOpts, pos []string) error {
		if o.user != "" {
			return c.call(ctx, http.MethodDelete, at("/users/", "/sessions")([]string{o.user}), nil, printRevoked)
		}
		return c.call(ctx, http.MethodDelete, at("/sessions/", "")(pos), nil, printRevoked)
	}},
	"keys list":                  {args: 0, run: apiGet(at("/keys", ""), printKeys)},
	"keys rotate":                {args: 0, run: apiPost(at("/keys/rotate", ""), printRotated)},
	"keys revoke":                {args: 1, run: apiPost(at("/keys/", "/revoke"), printRevokedKey)},
	"keys refresh-secrets":       {args: 0, run: apiGet(at("/secrets/refresh", ""), printRefreshSecrets)},
	"keys rotate-refresh-secret": {args: 0, run: apiPost(at("/secrets/refresh/rotate", ""), printRotatedRefreshSecret)},
	"keys retire-refresh-secret": {args: 1, run: apiConfirm(http.MethodPost, at("/secrets/refresh/", "/retire"), func(pos []string) string {
		return "refresh secret " + pos[0] + " retired: sessions whose current token it made must sign in again"
	})},
	"audit": {args: 0, flags: func(fs *flag.FlagSet, o *adminOpts) {
		fs.StringVar(&o.user, "user", "", "events of this user id")
		fs.StringVar(&o.typ, "type", "", "events of this type (user.disabled, key.rotated, ...)")
		fs.StringVar(&o.since, "since", "", "from this time (RFC 3339) or this long ago (24h)")
		fs.StringVar(&o.until, "until", "", "before this time (RFC 3339) or this long ago")
		fs.IntVar(&o.limit, "limit", 100, "at most this many events")
	}, run: runAudit},
	"backup": {args: 1, flags: func(fs *flag.FlagSet, o *adminOpts) {
		fs.BoolVar(&o.force, "force", false, "replace FILE if it exists")
	}, run: func(ctx context.Context, c *adminClient, o *adminOpts, pos []string) error {
		return c.backup(ctx, pos[0], o.force)
	}},
	"webhooks list": {args: 0, flags: func(fs *flag.FlagSet, o *adminOpts) {
		fs.BoolVar(&o.failed, "failed", false, "list the deliveries given up instead of the pending ones")
		fs.IntVar(&o.limit, "limit", 50, "at most this many (1..1000)")
	}, run: runWebhooksList},
	"webhooks replay": {args: 2, run: apiConfirm(http.MethodPost, func(pos []string) string {
		return "/admin/v1/webhooks/deliveries/" + url.PathEscape(pos[0]) + "/" + url.PathEscape(pos[1]) + "/replay"
	}, func(pos []string) string {
		return "delivery " + pos[1] + " to " + pos[0] + " is due again"
	})},
}

// runAdmin runs one admin command: group is "users", "sessions", "keys",
// "audit" or "backup".
func runAdmin(ctx context.Context, group string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	verb := ""
	if group == "users" || group == "sessions" || group == "keys" || group == "webhooks" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			fmt.Fprint(stderr, adminUsage)
			return flag.ErrHelp
		}
		verb, args = args[0], args[1:]
	}
	name := strings.TrimSpace(group + " " + verb)
	cmd, known := adminCommands[name]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	server, asJSON, insecure := adminFlags(fs, getenv)
	var o adminOpts
	if cmd.flags != nil {
		cmd.flags(fs, &o)
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case !known:
		fmt.Fprintf(stderr, "authex: unknown command %q\n\n", name)
		return usageError(stderr, "")
	case cmd.args < 0:
		if msg := cmd.check(&o, pos); msg != "" {
			return usageError(stderr, msg)
		}
	case len(pos) != cmd.args:
		return usageError(stderr, fmt.Sprintf("%s takes %d argument(s), got %d", name, cmd.args, len(pos)))
	}
	c, err := newAdminClient(getenv, *server, *insecure, *asJSON, stdout, stderr)
	if err != nil {
		return err
	}
	return cmd.run(ctx, c, &o, pos)
}

// newAdminClient reads the admin token and checks --server.
func newAdminClient(getenv func(string) string, server string, insecure, asJSON bool, stdout, stderr io.Writer) (*adminClient, error) {
	token := getenv("AUTHEX_ADMIN_TOKEN")
	if token == "" {
		return nil, errors.New("AUTHEX_ADMIN_TOKEN is not set: export one of the server's admin.tokens")
	}
	base, shown, err := adminServer(server, insecure)
	if err != nil {
		return nil, err
	}
	return &adminClient{server: base, shown: shown, token: token, json: asJSON,
		http: &http.Client{Timeout: 30 * time.Second, CheckRedirect: refuseRedirect}, stdout: stdout, stderr: stderr}, nil
}

func runUsersList(ctx context.Context, c *adminClient, o *adminOpts, _ []string) error {
	q := url.Values{}
	for k, v := range map[string]string{"email": o.email, "username": o.username, "provider": o.provider, "subject": o.subject, "after": o.after} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", fmt.Sprint(o.limit))
	return c.call(ctx, http.MethodGet, "/admin/v1/users?"+q.Encode(), nil, printUsers)
}

func runUsersRoles(ctx context.Context, c *adminClient, o *adminOpts, pos []string) error {
	path := at("/users/", "")(pos)
	if len(pos) == 1 && !o.clear {
		return c.call(ctx, http.MethodGet, path, nil, printRoles)
	}
	if o.clear && len(pos) > 1 {
		return usageError(c.stderr, "users roles: give roles or --clear, not both")
	}
	roles := append([]string{}, pos[1:]...)
	return c.call(ctx, http.MethodPut, path+"/roles", map[string]any{"roles": roles}, printRoles)
}

func runAudit(ctx context.Context, c *adminClient, o *adminOpts, _ []string) error {
	q := url.Values{}
	if o.user != "" {
		q.Set("user_id", o.user)
	}
	if o.typ != "" {
		q.Set("type", o.typ)
	}
	for k, v := range map[string]string{"since": o.since, "until": o.until} {
		if v == "" {
			continue
		}
		t, err := parseWhen(v, time.Now())
		if err != nil {
			return fmt.Errorf("--%s: %w", k, err)
		}
		q.Set(k, t.UTC().Format(time.RFC3339))
	}
	q.Set("limit", fmt.Sprint(o.limit))
	return c.call(ctx, http.MethodGet, "/admin/v1/audit?"+q.Encode(), nil, printAudit)
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
	var e web.ErrorBody
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

// whenp is when for the times the API leaves out when unset.
func whenp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return when(*t)
}

func printUsers(w io.Writer, raw []byte) error {
	var out struct {
		Users     []web.AdminUser `json:"users"`
		NextAfter string          `json:"next_after"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := make([][]string, 0, len(out.Users))
	for _, u := range out.Users {
		rows = append(rows, []string{u.ID, dash(u.Email), dash(u.Username), dash(u.Name), status(u.Disabled), dash(strings.Join(u.Roles, ",")), when(u.CreatedAt)})
	}
	table(w, "ID\tEMAIL\tUSERNAME\tNAME\tSTATUS\tROLES\tCREATED", rows)
	if out.NextAfter != "" {
		fmt.Fprintf(w, "\nmore: --after %s\n", out.NextAfter)
	}
	return nil
}

func printUser(w io.Writer, raw []byte) error {
	var u web.AdminUser
	if err := json.Unmarshal(raw, &u); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	verified := ""
	if u.EmailVerified {
		verified = " (verified)"
	}
	fmt.Fprintf(tw, "id:\t%s\nemail:\t%s%s\nusername:\t%s\nname:\t%s\nstatus:\t%s\nroles:\t%s\ncreated:\t%s\n",
		u.ID, dash(u.Email), verified, dash(u.Username), dash(u.Name), status(u.Disabled), dash(strings.Join(u.Roles, ",")), when(u.CreatedAt))
	tw.Flush()
	if u.Identities != nil && len(*u.Identities) > 0 {
		fmt.Fprintln(w)
		rows := make([][]string, 0, len(*u.Identities))
		for _, id := range *u.Identities {
			rows = append(rows, []string{id.Provider, id.Subject, dash(id.Email)})
		}
		table(w, "PROVIDER\tSUBJECT\tEMAIL", rows)
	}
	return nil
}

func printDisabled(w io.Writer, raw []byte) error {
	var out struct {
		User    web.AdminUser `json:"user"`
		Revoked int           `json:"revoked_sessions"`
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
	var u web.AdminUser
	if err := json.Unmarshal(raw, &u); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s roles: %s\n", u.ID, dash(strings.Join(u.Roles, ",")))
	return nil
}

func printSessions(w io.Writer, raw []byte) error {
	var out struct {
		Sessions []web.AdminSession `json:"sessions"`
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

func printKeys(w io.Writer, raw []byte) error {
	var out struct {
		Keys []web.AdminKey `json:"keys"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, k := range out.Keys {
		rows = append(rows, []string{k.ID, k.Algorithm, k.State, when(k.CreatedAt), when(k.NotBefore), whenp(k.RetiredAt), whenp(k.ExpiresAt)})
	}
	table(w, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRED\tLEAVES JWKS", rows)
	return nil
}

func printRotated(w io.Writer, raw []byte) error {
	var out struct {
		Key web.AdminKey `json:"key"`
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
		Key         web.AdminKey  `json:"key"`
		Replacement *web.AdminKey `json:"replacement"`
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

func printRefreshSecrets(w io.Writer, raw []byte) error {
	var out struct {
		Secrets []web.AdminRefreshSecret `json:"secrets"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, s := range out.Secrets {
		rows = append(rows, []string{s.ID, s.State, whenp(s.ActiveFrom), whenp(s.RetiresAt)})
	}
	table(w, "ID\tSTATE\tSIGNS FROM\tDELETED AT", rows)
	return nil
}

func printRotatedRefreshSecret(w io.Writer, raw []byte) error {
	var out struct {
		Secret web.AdminRefreshSecret `json:"secret"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	fmt.Fprintf(w, "new refresh secret %s signs from %s; tokens of the older secrets keep refreshing\n", out.Secret.ID, whenp(out.Secret.ActiveFrom))
	return nil
}

func printAudit(w io.Writer, raw []byte) error {
	var out struct {
		Events []web.AdminAuditEvent `json:"events"`
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
