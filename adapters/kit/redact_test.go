package kit

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// nastyPasswords hold every character that ends a URL's userinfo early in a
// naive parser.
var nastyPasswords = []string{
	"Sekr3tPw",
	"Sekr/3tPw",
	"Sekr@3tPw",
	"Sekr#3tPw",
	"Sekr?3tPw",
	"Sekr:3tPw",
	"a/Sekr@3t#Pw?x",
	"Sekr3t//@@##??Pw",
	"Sekr&3t=Pw",
	"Sekr%3tPw",
}

// leaks reports the first piece of secret (split at URL delimiters, pieces
// of at least 3 bytes) found in s.
func leaks(s, secret string) string {
	if strings.Contains(s, secret) {
		return secret
	}
	for _, piece := range strings.FieldsFunc(secret, func(r rune) bool { return strings.ContainsRune("/@#?:&=%", r) }) {
		if len(piece) >= 3 && strings.Contains(s, piece) {
			return piece
		}
	}
	return ""
}

func TestRedactURLPasswords(t *testing.T) {
	for _, pw := range nastyPasswords {
		for _, form := range []string{
			"amqp://relay:%s@rabbit.example:5672/vhost",
			"amqp://relay:%s@rabbit.example:5672",
			"amqp://relay:%s@rabbit.example",
			"amqps://relay:%s@[::1]:5671/v",
			"connecting to amqp://relay:%s@127.0.0.1:5672/: dial tcp 127.0.0.1:5672: connection refused",
			`Post "http://relay:%s@hooks.example/in?x=1": EOF`,
			"tcp://relay:%s@broker:1883, tls://relay:%[1]s@broker:8883",
			"http://%s@hooks.example/in", // the whole userinfo is the credential
		} {
			if strings.HasPrefix(form, "http://%s@") && strings.Contains(pw, ":") {
				continue // "user:password": the user is not a secret
			}
			in := strings.ReplaceAll(form, "%s", pw)
			in = strings.ReplaceAll(in, "%[1]s", pw)
			got := Redact(in)
			if l := leaks(got, pw); l != "" {
				t.Errorf("Redact(%q) = %q: leaks %q", in, got, l)
			}
			if !strings.Contains(got, Mask) {
				t.Errorf("Redact(%q) = %q: no %s", in, got, Mask)
			}
		}
	}
}

func TestRedactKeepsWhatIsNotSecret(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"amqp://relay:Sekr/3t@rabbit:5672/vhost", "amqp://relay:xxxxx@rabbit:5672/vhost"},
		{"amqp://relay:p@ss@rabbit:5672/v", "amqp://relay:xxxxx@rabbit:5672/v"},
		{"connecting to amqp://relay:pw1@127.0.0.1:5672/: refused", "connecting to amqp://relay:xxxxx@127.0.0.1:5672/: refused"},
		{`Post "https://hooks.example/in?token=abc123&user=bob": EOF`, `Post "https://hooks.example/in?token=xxxxx&user=xxxxx": EOF`},
		{"https://h/p?access_token=T0k&key=K3y&sig=S1g&empty=#frag=F1", "https://h/p?access_token=xxxxx&key=xxxxx&sig=xxxxx&empty=#frag=xxxxx"},
		{"https://h/p?Tok3nWithoutName", "https://h/p?xxxxx"},
		{"http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"},
		{"no url here: token=abc", "no url here: token=abc"},
		{"dial tcp 127.0.0.1:5672: connection refused", "dial tcp 127.0.0.1:5672: connection refused"},
		{"http://h/cb?next=http://evil/x?token=abc end", "http://h/cb?next=xxxxx end"},
		{"redirect to https://u:pw@h/x?sig=s1 and http://h2/?k=v", "redirect to https://u:xxxxx@h/x?sig=xxxxx and http://h2/?k=xxxxx"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRedactSecrets(t *testing.T) {
	for _, pw := range nastyPasswords {
		for _, in := range []string{
			"auth failed for password " + pw,
			"dsn user:" + url.QueryEscape(pw) + "@tcp(h:3306)/db",
			"user=" + url.PathEscape(pw),
		} {
			got := Redact(in, pw, "", "ab") // empty and short secrets are ignored
			if l := leaks(got, pw); l != "" {
				t.Errorf("Redact(%q, %q) = %q: leaks %q", in, pw, got, l)
			}
		}
	}
	if got := Redact("a ab abc", "ab"); got != "a ab abc" {
		t.Errorf("a 2-byte secret was replaced: %q", got)
	}
}

func TestFieldf(t *testing.T) {
	err := Fieldf("tls.caFile", "no PEM certificate in %s", "x.pem")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "tls.caFile" || err.Error() != "tls.caFile: no PEM certificate in x.pem" {
		t.Fatalf("Fieldf: got %#v (%v), want a FieldError on tls.caFile", err, err)
	}
}
