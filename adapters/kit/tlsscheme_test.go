package kit

import (
	"errors"
	"testing"
)

func TestRequireTLSScheme(t *testing.T) {
	for _, c := range []struct {
		files  TLSFiles
		secure bool
		field  string // "" means no error
	}{
		{TLSFiles{}, false, ""},
		{TLSFiles{CAFile: "ca.pem"}, true, ""},
		{TLSFiles{CAFile: "ca.pem"}, false, "caFile"},
		{TLSFiles{ClientCert: "c.pem", ClientKey: "k.pem"}, false, "clientCert"},
	} {
		err := RequireTLSScheme(&c.files, c.secure, "an https:// url")
		var fe *FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%+v secure=%t: got %v, want nil", c.files, c.secure, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%+v secure=%t: got %v, want an error on %s", c.files, c.secure, err, c.field)
		}
	}
}
