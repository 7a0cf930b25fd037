// Package redact takes secrets out of URLs before they reach a log line or
// a telemetry attribute: remote-write endpoints and scrape targets carry
// credentials as userinfo (https://user:token@host/) or query parameters
// (?api_key=...), and both end up in error messages.
//
// URL keeps what helps an operator (scheme, host, path, the names of the
// query parameters) and replaces the rest with "REDACTED"; Text does so for
// every URL inside a message; Handler does it for every slog record of the
// Prometheus libraries.
package redact

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// Mark replaces what is taken out.
const Mark = "REDACTED"

// URL returns raw without its userinfo (user and password alike: a
// username is often a token) and with every query value replaced. A string
// that does not parse as a URL but looks like it holds one is replaced
// whole, rather than risk passing a secret on.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.ContainsAny(raw, "@?") {
			return Mark
		}
		return raw
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" {
		return raw // nothing to take out: left exactly as written
	}
	if u.User != nil {
		u.User = url.User(Mark)
	}
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery)
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = Mark, ""
	}
	return u.String()
}

// redactQuery keeps the parameter names, in their order, and replaces
// every value.
func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		if name, _, ok := strings.Cut(p, "="); ok {
			parts[i] = name + "=" + Mark
		}
	}
	return strings.Join(parts, "&")
}

// urlInText finds URLs in free text, as error messages quote them
// (`Post "https://user:xxxxx@host/w?k=v": dial tcp ...`).
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>` + "`" + `]+`)

// Text redacts every URL in s.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, URL)
}

// Handler passes slog records on to next with the message and every
// attribute value redacted (values that are errors or fmt.Stringers, such
// as a scrape target, are turned into redacted strings).
func Handler(next slog.Handler) slog.Handler { return handler{next} }

type handler struct{ next slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Text(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = attr(a)
	}
	return handler{h.next.WithAttrs(clean)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.next.WithGroup(name)} }

func attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Text(v.String()))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = attr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.Any(a.Key, redactedError{msg: Text(x.Error()), err: x})
		case fmt.Stringer:
			return slog.String(a.Key, Text(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactedError prints redacted and still unwraps to the original, so
// errors.Is keeps working for whoever handles the record.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
