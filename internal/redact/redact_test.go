package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:9090/api/v1/write", "http://127.0.0.1:9090/api/v1/write"},
		{"https://user:s3cret@mimir.example/api/v1/push", "https://REDACTED@mimir.example/api/v1/push"},
		{"https://t0ken@mimir.example/push", "https://REDACTED@mimir.example/push"},
		{"http://h/metrics?api_key=s3cret&module=x", "http://h/metrics?api_key=REDACTED&module=REDACTED"},
		{"http://h/metrics?flag", "http://h/metrics?flag"},
		{"http://u:p@h/m?k=v#frag", "http://REDACTED@h/m?k=REDACTED#REDACTED"},
		{"http://h/%zz?k=s3cret", "REDACTED"}, // does not parse
		{"not a url", "not a url"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	err := &url.Error{Op: "Post", URL: "http://user:s3cret@127.0.0.1:1/w?api_key=k3y", Err: errors.New("connection refused")}
	got := Text(err.Error())
	if strings.Contains(got, "s3cret") || strings.Contains(got, "k3y") || !strings.Contains(got, "127.0.0.1:1/w?api_key=REDACTED") {
		t.Fatalf("Text(%q) = %q", err.Error(), got)
	}
	if got := Text("two: http://a:b@x/ and https://y/?q=1 end"); got != "two: http://REDACTED@x/ and https://y/?q=REDACTED end" {
		t.Fatalf("two URLs: %q", got)
	}
}

type target struct{}

func (target) String() string { return "http://10.0.0.1:9100/metrics?token=s3cret" }

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewTextHandler(&buf, nil))).With("target", target{})
	cause := errors.New(`Get "http://u:s3cret@h/m": refused`)
	log.Warn("scrape of http://h/m?token=s3cret failed", "err", cause, slog.Group("g", "url", "http://u:s3cret@h/"))
	out := buf.String()
	if strings.Contains(out, "s3cret") {
		t.Fatalf("a secret reached the log: %s", out)
	}
	if !strings.Contains(out, "token=REDACTED") || !strings.Contains(out, "http://REDACTED@h/m") {
		t.Fatalf("the redacted URLs are missing: %s", out)
	}
}
