package scrapeloop

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// fast builds the final labels of a text-format series straight from its
// bytes as the body has them (`name{a="b",…}`), in one allocation, where
// the parser's path takes three (a copy of the bytes, the parsed labels,
// the merged ones). It takes only the plain spelling — unquoted names, no
// escapes, no blanks, no empty values, no repeated names, no label the
// target also sets (unless honor_labels) —
// and reports false for anything else, which then goes the parser's way
// (labeler.of), so the result is always the same labels.
// curType is the type of the last TYPE line, which decides, as in the
// parser, whether le and quantile values are rewritten in float form.
func (l *labeler) fast(met []byte, curType model.MetricType) (labels.Labels, bool) {
	sc := l.scratch[:0]
	i := nameEnd(met, 0, true)
	if i == 0 {
		return labels.EmptyLabels(), false
	}
	sc = append(sc, labels.Label{Name: model.MetricNameLabel, Value: view(met[:i])})
	if i < len(met) {
		if met[i] != '{' {
			return labels.EmptyLabels(), false
		}
		i++
		for i < len(met) && met[i] != '}' {
			j := nameEnd(met, i, false)
			if j == i || j+1 >= len(met) || met[j] != '=' || met[j+1] != '"' {
				return labels.EmptyLabels(), false
			}
			name := view(met[i:j])
			k := j + 2
			for k < len(met) && met[k] != '"' {
				if met[k] == '\\' {
					return labels.EmptyLabels(), false
				}
				k++
			}
			if k >= len(met) {
				return labels.EmptyLabels(), false
			}
			val := view(met[j+2 : k])
			if (curType == model.MetricTypeSummary && name == model.QuantileLabel) || (curType == model.MetricTypeHistogram && name == model.BucketLabel) {
				val = l.floatForm(val)
			}
			if val == "" {
				// An empty value is no label but still wins over honor_labels:
				// the parser's way.
				return labels.EmptyLabels(), false
			}
			sc = append(sc, labels.Label{Name: name, Value: val})
			i = k + 1
			if i < len(met) && met[i] == ',' {
				i++
			}
		}
		if i != len(met)-1 {
			return labels.EmptyLabels(), false
		}
	}
	exposed := len(sc)
	for _, t := range l.target {
		found := false
		for _, e := range sc[:exposed] {
			if e.Name == t.Name {
				found = true
				break
			}
		}
		if found {
			if l.honor {
				continue
			}
			return labels.EmptyLabels(), false // a conflict: exported_* naming is the parser's way
		}
		sc = append(sc, t)
	}
	ls := labels.New(sc...) // sorts sc
	l.scratch = sc[:0]
	for n := 1; n < len(sc); n++ {
		if sc[n].Name == sc[n-1].Name {
			return labels.EmptyLabels(), false
		}
	}
	return ls, true
}

// plainSeries says whether labeler.fast may read p's series bytes: those of
// the Prometheus text parser, and of the OpenMetrics parser unless it adds
// type and unit labels. Both spell a series `name{a="b",…}` and both rewrite
// le and quantile values in float form by the family's type, as fast does.
// The protobuf parser has no series text; a parser wrapped for NHCB
// conversion is neither type, so it takes the parser's way too.
func plainSeries(p textparse.Parser, opts textparse.ParserOptions) bool {
	switch p.(type) {
	case *textparse.PromParser:
		return true
	case *textparse.OpenMetricsParser:
		return !opts.EnableTypeAndUnitLabels
	}
	return false
}

// floatForm is a bucket bound or quantile in the float form the parser
// gives it; a target has few distinct ones, so they are kept.
func (l *labeler) floatForm(v string) string {
	if f, ok := l.floats[v]; ok {
		return f
	}
	f := v
	if x, err := strconv.ParseFloat(v, 64); err == nil {
		f = labels.FormatOpenMetricsFloat(x)
	}
	if l.floats == nil || len(l.floats) >= 1024 {
		l.floats = map[string]string{}
	}
	l.floats[strings.Clone(v)] = f
	return f
}

// nameEnd returns the end of the metric (colons allowed) or label name that
// starts at i, or i when there is none.
func nameEnd(b []byte, i int, metric bool) int {
	j := i
	for j < len(b) {
		c := b[j]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', metric && c == ':':
		case c >= '0' && c <= '9' && j > i:
		default:
			return j
		}
		j++
	}
	return j
}

// view is b as a string without a copy; labels.New copies what it keeps.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
