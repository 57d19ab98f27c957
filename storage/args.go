package storage

import "fmt"

// Argument checks that every backend makes before it touches its data.
// They name the argument but not the backend: the backend prefixes the
// error with its own name ("bolt: user id is empty").

// EmptyArg is the error for an empty required argument; what names it.
func EmptyArg(what string) error { return fmt.Errorf("%s is empty", what) }

// CheckNewUser checks CreateUser's arguments and returns first owned by
// u: its UserID may be empty (it is then u's) but not another user's.
func CheckNewUser(u User, first Identity) (Identity, error) {
	switch {
	case u.ID == "":
		return first, EmptyArg("user id")
	case first.ID == "":
		return first, EmptyArg("identity id")
	case first.UserID == "":
		first.UserID = u.ID
	case first.UserID != u.ID:
		return first, fmt.Errorf("create user %q: first identity belongs to user %q", u.ID, first.UserID)
	}
	return first, nil
}

// CheckSecret checks EnsureSecret's arguments.
func CheckSecret(name string, value []byte) error {
	switch {
	case name == "":
		return EmptyArg("secret name")
	case len(value) == 0:
		return EmptyArg("secret value")
	}
	return nil
}
