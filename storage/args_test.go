package storage

import "testing"

func TestCheckNewUser(t *testing.T) {
	u := User{ID: "u1"}
	for _, tt := range []struct {
		name    string
		u       User
		first   Identity
		want    string // error text, or "" for none
		wantOwn string
	}{
		{"owner filled in", u, Identity{ID: "i1"}, "", "u1"},
		{"owner given", u, Identity{ID: "i1", UserID: "u1"}, "", "u1"},
		{"no user id", User{}, Identity{ID: "i1"}, "user id is empty", ""},
		{"no identity id", u, Identity{}, "identity id is empty", ""},
		{"another user's identity", u, Identity{ID: "i1", UserID: "u2"}, `create user "u1": first identity belongs to user "u2"`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckNewUser(tt.u, tt.first)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("err = %v, want %q", err, tt.want)
			case tt.want == "" && got.UserID != tt.wantOwn:
				t.Fatalf("UserID = %q, want %q", got.UserID, tt.wantOwn)
			}
		})
	}
	if err := CheckSecret("", []byte("v")); err == nil || err.Error() != "secret name is empty" {
		t.Errorf("CheckSecret without a name: %v", err)
	}
	if err := CheckSecret("n", nil); err == nil || err.Error() != "secret value is empty" {
		t.Errorf("CheckSecret without a value: %v", err)
	}
}
