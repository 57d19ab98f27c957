package web

import (
	"cmp"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// The simplejwt profile: the DigitalOcean tutorial's DRF + simplejwt
// backend, whose axios AuthContext posts {username, password} to /login/,
// keeps access and refresh, and reads /user/.
//
// Usernames are the tutorial's: register takes a plain username beside
// the email (exchange.CheckUsername's rules), and login takes that
// username or the email. A username that is the account's own email (the
// old way) is accepted too, and then the account simply has no username.
// Every refusal of the username, and a taken email, is on the username
// field the register page shows (err.response.data.username[0]).

type sjUserJSON struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// sjField puts a service refusal on the form field the register page shows.
func sjField(reason string) string {
	switch {
	case strings.HasPrefix(reason, "password_"), reason == exchange.ReasonMissingPassword:
		return "password"
	case reason == exchange.ReasonInvalidEmail, reason == exchange.ReasonMissingEmail:
		return "email"
	case reason == exchange.ReasonEmailTaken, reason == exchange.ReasonUsernameTaken,
		reason == exchange.ReasonInvalidUsername, reason == exchange.ReasonUsernameIsEmail:
		return "username" // the page reads err.response.data.username[0]
	}
	return ""
}

// sjRegister is the tutorial's RegisterView: 201 with the user's fields, or
// 400 with every field's problems.
func (s *Server) sjRegister(c echo.Context) error {
	var req struct {
		Username  string `json:"username" form:"username"`
		Email     string `json:"email" form:"email"`
		Password  string `json:"password" form:"password"`
		Password2 string `json:"password2" form:"password2"`
		FirstName string `json:"first_name" form:"first_name"`
		LastName  string `json:"last_name" form:"last_name"`
	}
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewDRF, err)
	}
	req.Username, req.Email = strings.TrimSpace(req.Username), strings.TrimSpace(req.Email)
	req.FirstName, req.LastName = strings.TrimSpace(req.FirstName), strings.TrimSpace(req.LastName)
	username := req.Username
	if strings.Contains(username, "@") && (req.Email == "" || sameAddress(username, req.Email)) {
		// The username is the email: an account without a username.
		req.Email, username = cmp.Or(req.Email, username), ""
	}
	problems := map[string]any{}
	reason := ""
	add := func(field, msg, r string) {
		if _, ok := problems[field]; !ok {
			problems[field] = []string{msg}
		}
		if reason == "" {
			reason = r
		}
	}
	for _, f := range []struct{ name, value string }{
		{"username", req.Username}, {"password", req.Password}, {"password2", req.Password2},
	} {
		if f.value == "" {
			add(f.name, "This field is required.", exchange.ReasonMissingField)
		}
	}
	if username != "" {
		if err := exchange.CheckUsername(username); err != nil {
			e := exchange.AsError(err)
			add("username", e.Description, e.Reason)
		}
	}
	if req.Email == "" && req.Username != "" {
		add("email", "This field is required.", exchange.ReasonMissingField)
	}
	if req.Password != "" && req.Password2 != "" && req.Password != req.Password2 {
		add("password", "Password fields didn't match.", exchange.ReasonPasswordMismatch)
	}
	if req.Password != "" {
		if err := s.svc.CheckPassword(req.Password, req.Email); err != nil {
			e := exchange.AsError(err)
			if field := sjField(e.Reason); field != "" {
				add(field, e.Description, e.Reason)
			} else {
				return s.compatError(c, viewDRF, err)
			}
		}
	}
	if len(problems) > 0 {
		problems["reason"] = reason
		return compatJSON(c, http.StatusBadRequest, problems)
	}
	who, _, err := s.compatCaller(c)
	if err != nil {
		return s.compatError(c, viewDRF, err)
	}
	name := strings.TrimSpace(req.FirstName + " " + req.LastName)
	res, err := s.svc.Register(c.Request().Context(), exchange.RegisterRequest{
		Email: req.Email, Password: req.Password, Name: name, Username: username,
		GivenName: req.FirstName, FamilyName: req.LastName, Client: who, NoSession: true,
	})
	if err != nil {
		return s.compatError(c, viewDRFRegister, err)
	}
	u := toSJUser(res.User)
	return c.JSON(http.StatusCreated, map[string]string{
		"username": u.Username, "email": u.Email, "first_name": u.FirstName, "last_name": u.LastName})
}

// toSJUser is the tutorial's UserSerializer: the username (the email for
// an account without one), and first_name and last_name as registered
// (split from the one name for accounts that came without them).
func toSJUser(u storage.User) sjUserJSON {
	first, last := u.GivenName, u.FamilyName
	if first == "" && last == "" {
		first, last = splitName(u.Name)
	}
	return sjUserJSON{ID: u.ID, Username: cmp.Or(u.Username, u.Email), Email: u.Email, FirstName: first, LastName: last}
}

// sjLogin is simplejwt's TokenObtainPairView: {username, password} ->
// {access, refresh}; username is the account's username or its email.
func (s *Server) sjLogin(c echo.Context) error {
	var req struct {
		Username string `json:"username" form:"username"`
		Password string `json:"password" form:"password"`
	}
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewDRF, err)
	}
	var missing []string
	if req.Username == "" {
		missing = append(missing, "username")
	}
	if req.Password == "" {
		missing = append(missing, "password")
	}
	if len(missing) > 0 {
		return drfRequired(c, missing...)
	}
	who, _, err := s.compatCaller(c)
	if err != nil {
		return s.compatError(c, viewDRF, err)
	}
	res, err := s.svc.Login(c.Request().Context(), exchange.LoginRequest{
		Identifier: req.Username, Password: req.Password, Client: who,
	})
	if err != nil {
		return s.compatError(c, viewDRFLogin, err)
	}
	return writeTokens(c, map[string]string{"access": res.AccessToken, "refresh": res.RefreshToken})
}

// sjUser is the tutorial's UserDetailView.
func (s *Server) sjUser(c echo.Context) error {
	p, err := s.drfPrincipal(c)
	if p == nil {
		return err
	}
	return c.JSON(http.StatusOK, toSJUser(p.User))
}

// sameAddress reports whether the username names the email: one
// storage.EmailKey (ASCII case folded, nothing else; strings.EqualFold
// would match U+212A KELVIN SIGN to k).
func sameAddress(a, b string) bool {
	ka, _ := storage.EmailKey(a)
	kb, _ := storage.EmailKey(b)
	return ka == kb
}
