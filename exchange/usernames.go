package exchange

import (
	"context"
	"errors"
	"strings"

	"github.com/authex/authex/storage"
)

// Username rules (docs/accounts.md, "Usernames"): 3 to 30 characters of
// ASCII letters, digits, '.', '_' and '-', the first a letter or a digit.
// A username never contains '@', so it can never be taken for an email
// address (someone else's): a login identifier with '@' is an email, one
// without is a username. Uniqueness ignores ASCII case only
// (storage.UsernameKey); the name is kept as given.
const (
	MinUsernameLength = 3
	MaxUsernameLength = 30
)

// CheckUsername applies the username rules to a trimmed name. It answers
// an *Error with KindInvalidRequest and ReasonUsernameIsEmail or
// ReasonInvalidUsername.
func CheckUsername(name string) error {
	if strings.Contains(name, "@") {
		return newError(KindInvalidRequest, ReasonUsernameIsEmail,
			"a username must not contain '@': sign in with the email address itself, or choose a name without '@'", nil)
	}
	if !validUsername(name) {
		return newError(KindInvalidRequest, ReasonInvalidUsername,
			"a username is 3 to 30 letters, digits, '.', '_' or '-', starting with a letter or a digit", nil)
	}
	return nil
}

func validUsername(name string) bool {
	if len(name) < MinUsernameLength || len(name) > MaxUsernameLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func usernameTaken() error {
	return newError(KindAccountExists, ReasonUsernameTaken, "an account with this username already exists", nil)
}

// signInName is who a login names: an email or a username.
type signInName struct {
	email, username string
}

// loginName picks the one name a login gives: email, username, or an
// identifier that is an email when it contains '@' and a username
// otherwise.
func loginName(email, username, identifier string) (signInName, error) {
	email, username, identifier = strings.TrimSpace(email), strings.TrimSpace(username), strings.TrimSpace(identifier)
	given := 0
	for _, v := range []string{email, username, identifier} {
		if v != "" {
			given++
		}
	}
	switch {
	case given == 0:
		return signInName{}, newError(KindInvalidRequest, ReasonMissingEmail, "email, username or identifier is required", nil)
	case given > 1:
		return signInName{}, newError(KindInvalidRequest, ReasonConflictingIdentifiers,
			"give one of email, username and identifier", nil)
	case identifier != "" && strings.Contains(identifier, "@"):
		return signInName{email: identifier}, nil
	case identifier != "":
		return signInName{username: identifier}, nil
	}
	return signInName{email: email, username: username}, nil
}

// lookup finds the password account n names. ErrNotFound when there is
// none, including a username whose account has no password.
func (n signInName) lookup(ctx context.Context, store storage.Store) (storage.User, error) {
	if n.email != "" {
		return store.GetUserByPasswordEmail(ctx, n.email)
	}
	u, err := store.GetUserByUsername(ctx, n.username)
	if err == nil && u.PasswordHash == "" {
		return storage.User{}, storage.ErrNotFound
	}
	return u, err
}

// throttleKey is the account's key in the login budgets: one account has
// one budget whichever name it is signed in with (its email's key), and a
// name no account has gets a budget of its own, so an unknown name is
// throttled exactly as a known one.
func (n signInName) throttleKey(u storage.User, err error) string {
	if err == nil && u.Email != "" {
		return emailThrottleKey(u.Email)
	}
	if n.email != "" {
		return emailThrottleKey(n.email)
	}
	return "username\x00" + storage.UsernameKey(n.username)
}

func emailThrottleKey(email string) string {
	k, _ := storage.EmailKey(email)
	return k
}

// registrationConflict maps a store conflict of a registration to its reason.
func registrationConflict(err error) error {
	if errors.Is(err, storage.ErrUsernameTaken) {
		return usernameTaken()
	}
	return emailTaken()
}
