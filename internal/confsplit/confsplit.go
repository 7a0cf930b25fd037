// Package confsplit reads a config that squashes a collector config block
// (confighttp's ClientConfig or ServerConfig) beside its own keys. Those
// blocks have their own Unmarshal, and a squashed Unmarshaler makes the
// collector skip the unknown-key check for the whole config, so a misspelt
// key would silently fall back to its default. Split hands the block its
// keys and leaves the rest to a strict unmarshal.
package confsplit

import (
	"reflect"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// Split divides conf into the keys of block's type (its top-level
// mapstructure names) and every other key.
func Split(conf *confmap.Conf, block any) (inner, rest *confmap.Conf) {
	keys := map[string]bool{}
	addKeys(reflect.TypeOf(block), keys)
	in, out := map[string]any{}, map[string]any{}
	for k, v := range conf.ToStringMap() {
		if keys[k] {
			in[k] = v
		} else {
			out[k] = v
		}
	}
	return confmap.NewFromStringMap(in), confmap.NewFromStringMap(out)
}

// addKeys adds the mapstructure names of t's fields, and of the fields of
// structs squashed into it.
func addKeys(t reflect.Type, keys map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ",")
		switch {
		case name != "":
			keys[name] = true
		case strings.Contains(opts, "squash"):
			addKeys(t.Field(i).Type, keys)
		}
	}
}
