package kit

import (
	"net/url"
	"strings"
)

// Mask replaces what Redact removes.
const Mask = "xxxxx"

// Redact returns s with its secrets replaced by Mask, for error texts and
// log lines:
//
//   - every secret given of at least 3 bytes, also in its percent-encoded
//     forms;
//   - in every URL (scheme://…) found in s, the password of its userinfo,
//     or the whole userinfo when it has no password ("https://TOKEN@host"),
//     however the password is written: a raw "/", "@", "#" or "?" in it is
//     taken as part of it, the userinfo ending at the last "@" that is
//     followed by a host;
//   - in every such URL, every query value and fragment value, keeping the
//     names ("?token=xxxxx&user=xxxxx").
//
// A URL ends at white space, a quote or an angle bracket. When a text is
// ambiguous Redact removes more rather than less: "http://h/?mail=a@b.c"
// reads as userinfo "h/?mail=a" at host "b.c".
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < 3 {
			continue
		}
		s = strings.ReplaceAll(s, sec, Mask)
		for _, enc := range []string{url.QueryEscape(sec), url.PathEscape(sec), url.UserPassword("", sec).String()[1:]} {
			if enc != sec && len(enc) >= 3 {
				s = strings.ReplaceAll(s, enc, Mask)
			}
		}
	}
	if !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, " \t\r\n\"'`<>")
		if end < 0 {
			end = len(s)
		}
		redactURL(&b, s[:end])
		s = s[end:]
	}
}

// redactURL writes rest, a URL after its "://", with its userinfo's
// password and its query and fragment values masked.
func redactURL(b *strings.Builder, rest string) {
	if at := userinfoEnd(rest); at >= 0 {
		if c := strings.IndexByte(rest[:at], ':'); c >= 0 {
			b.WriteString(rest[:c+1])
		}
		b.WriteString(Mask)
		rest = rest[at:] // from the '@'
	}
	q := strings.IndexAny(rest, "?#")
	if q < 0 {
		b.WriteString(rest)
		return
	}
	b.WriteString(rest[:q])
	rest = rest[q:]
	// rest is "?query#fragment", "?query" or "#fragment": mask each value.
	for len(rest) > 0 {
		b.WriteByte(rest[0]) // '?', '#', '&' or ';'
		rest = rest[1:]
		end := strings.IndexAny(rest, "&;#")
		if end < 0 {
			end = len(rest)
		}
		part := rest[:end]
		rest = rest[end:]
		if eq := strings.IndexByte(part, '='); eq >= 0 {
			b.WriteString(part[:eq+1])
			if eq+1 < len(part) {
				b.WriteString(Mask)
			}
		} else if part != "" {
			b.WriteString(Mask)
		}
	}
}

// userinfoEnd returns the index of the '@' that ends rest's userinfo, or -1
// if it has none. The last '@' followed by a host (and an optional port,
// then the end, '/', '?' or '#') wins, so a password may hold any of
// "/@#?:"; failing that, the last '@' before the first '/', '?' or '#'.
// A host is followed by the end, '/', '?', '#' or punctuation (",;.)]}").
func userinfoEnd(rest string) int {
	for j := strings.LastIndexByte(rest, '@'); j >= 0; j = strings.LastIndexByte(rest[:j], '@') {
		if isHostStart(rest[j+1:]) {
			return j
		}
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	return strings.LastIndexByte(rest[:end], '@')
}

// isHostStart reports whether s starts with host[:port] followed by the end
// of s, by '/', '?' or '#', or by punctuation that ends a URL in prose.
func isHostStart(s string) bool {
	i := 0
	if strings.HasPrefix(s, "[") {
		e := strings.IndexByte(s, ']')
		if e < 2 {
			return false
		}
		i = e + 1
	} else {
		for i < len(s) && isHostByte(s[i]) {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i < len(s) && s[i] == ':' {
		i++
		n := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == n {
			return false
		}
	}
	return i == len(s) || strings.IndexByte("/?#,;.)]}", s[i]) >= 0
}

func isHostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '~' || c == '%'
}
