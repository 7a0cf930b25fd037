// Package loadgen is the load generator of Sluice's benchmarks and tests: it
// serves Prometheus exposition for N targets, each with exactly M series (as
// Prometheus stores them), values changing every scrape, some series churning,
// all of it a pure function of (seed, target, series, scrape number) so a test
// can compute what any scrape contained.
//
// The mix, counted in stored series (sample lines) per target:
//   - 40% counters, families `lg_counter_<f>_total{id, gen}`, 100 series each,
//     value scrape × step (step 1–10, per series): monotonic;
//   - 20% classic histograms `lg_hist_<f>{id}`, 8 buckets (0.005 … 2.5) plus
//     +Inf, _sum and _count: 11 series each, counts growing every scrape;
//   - 10% summaries `lg_summary_<f>{id}`, quantiles 0.5, 0.9, 0.99 plus _sum
//     and _count: 5 series each;
//   - the rest gauges `lg_gauge_<f>{id, gen}`, values jumping every scrape.
//
// Bucket bounds and quantiles are not whole numbers, so Prometheus 2 and 3
// write their le and quantile labels alike. Churn replaces ChurnRate of the
// counters and gauges every scrape by bumping their `gen` label.
package loadgen

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Config describes the load.
type Config struct {
	Targets          int
	SeriesPerTarget  int     // stored series per target per scrape
	Seed             int64   // same seed, same exposition
	ChurnRate        float64 // fraction of counters and gauges given a new identity per scrape, 0..1
	NativeHistograms bool    // histograms carry native buckets too (seen with the protobuf format)
	Prefix           string  // metric name prefix, default "lg_"
}

// Validate names the field at fault.
func (c *Config) Validate() error {
	var errs []error
	if c.Targets < 1 {
		errs = append(errs, fmt.Errorf("targets (-targets) must be >= 1, got %d", c.Targets))
	}
	if c.SeriesPerTarget < 100 {
		errs = append(errs, fmt.Errorf("series per target (-series) must be >= 100, got %d", c.SeriesPerTarget))
	}
	if !(c.ChurnRate >= 0 && c.ChurnRate <= 1) { // NaN fails too
		errs = append(errs, fmt.Errorf("churn rate (-churn) must be in [0, 1], got %v", c.ChurnRate))
	}
	return errors.Join(errs...)
}

var (
	bounds    = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 2.5}
	quantiles = []float64{0.5, 0.9, 0.99}
)

const (
	familySize = 100
	histLines  = 11 // 8 buckets, +Inf, _sum, _count
	summLines  = 5  // 3 quantiles, _sum, _count
)

// Generator computes what each target serves at each scrape.
type Generator struct {
	cfg                   Config
	counters, gauges      int // series
	histograms, summaries int // histogram / summary series (each several lines)
}

// New returns a generator for a valid config.
func New(cfg Config) (*Generator, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "lg_"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := cfg.SeriesPerTarget
	g := &Generator{cfg: cfg}
	g.counters = m * 40 / 100
	g.histograms = m * 20 / 100 / histLines
	g.summaries = m * 10 / 100 / summLines
	g.gauges = m - g.counters - g.histograms*histLines - g.summaries*summLines
	return g, nil
}

// Lines is the number of stored series every scrape of a target serves.
func (g *Generator) Lines() int {
	return g.counters + g.gauges + g.histograms*histLines + g.summaries*summLines
}

// hash mixes the seed with the given numbers.
func (g *Generator) hash(parts ...int64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, p := range append([]int64{g.cfg.Seed}, parts...) {
		for i := range b {
			b[i] = byte(p >> (8 * i))
		}
		h.Write(b[:])
	}
	return h.Sum64()
}

// generation is how often series i of n churnable ones has been replaced by
// scrape k: each scrape bumps the next ChurnRate·n of them, round robin.
func (g *Generator) generation(i, n, k int) int64 {
	cc := int(math.Round(g.cfg.ChurnRate * float64(n)))
	if cc == 0 || k == 0 {
		return 0
	}
	upTo := func(p int) int { return (p - i + n - 1) / n } // positions < p that are ≡ i (mod n)
	return int64(upTo((k+1)*cc) - upTo(cc))
}

func label(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

// Families returns what target t serves at its scrape number k (from 0).
func (g *Generator) Families(t, k int) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	p, step := g.cfg.Prefix, func(kind, i int) float64 { return float64(1 + g.hash(int64(t), int64(kind), int64(i))%10) }
	churnable := g.counters + g.gauges
	family := func(name, help string, typ dto.MetricType) *dto.MetricFamily {
		mf := &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: typ.Enum()}
		out = append(out, mf)
		return mf
	}
	var mf *dto.MetricFamily
	for i := 0; i < g.counters; i++ {
		if i%familySize == 0 {
			mf = family(fmt.Sprintf("%scounter_%d_total", p, i/familySize), "A counter of the load generator.", dto.MetricType_COUNTER)
		}
		mf.Metric = append(mf.Metric, &dto.Metric{
			Label:   []*dto.LabelPair{label("gen", fmt.Sprint(g.generation(i, churnable, k))), label("id", fmt.Sprint(i))},
			Counter: &dto.Counter{Value: proto.Float64(float64(k) * step(0, i))},
		})
	}
	for i := 0; i < g.gauges; i++ {
		if i%familySize == 0 {
			mf = family(fmt.Sprintf("%sgauge_%d", p, i/familySize), "A gauge of the load generator.", dto.MetricType_GAUGE)
		}
		v := float64(g.hash(int64(t), 1, int64(i), int64(k))%100000) / 100
		mf.Metric = append(mf.Metric, &dto.Metric{
			Label: []*dto.LabelPair{label("gen", fmt.Sprint(g.generation(g.counters+i, churnable, k))), label("id", fmt.Sprint(i))},
			Gauge: &dto.Gauge{Value: proto.Float64(v)},
		})
	}
	for i := 0; i < g.histograms; i++ {
		if i%(familySize/histLines+1) == 0 {
			mf = family(fmt.Sprintf("%shist_%d", p, i/(familySize/histLines+1)), "A histogram of the load generator.", dto.MetricType_HISTOGRAM)
		}
		mf.Metric = append(mf.Metric, &dto.Metric{Label: []*dto.LabelPair{label("id", fmt.Sprint(i))}, Histogram: g.histogram(k, step(2, i))})
	}
	for i := 0; i < g.summaries; i++ {
		if i%(familySize/summLines) == 0 {
			mf = family(fmt.Sprintf("%ssummary_%d", p, i/(familySize/summLines)), "A summary of the load generator.", dto.MetricType_SUMMARY)
		}
		a := step(3, i)
		s := &dto.Summary{SampleCount: proto.Uint64(uint64(float64(k) * a)), SampleSum: proto.Float64(float64(k) * a * 0.2)}
		for qi, q := range quantiles {
			s.Quantile = append(s.Quantile, &dto.Quantile{Quantile: proto.Float64(q), Value: proto.Float64(float64(g.hash(int64(t), 3, int64(i), int64(k), int64(qi))%1000) / 1000)})
		}
		mf.Metric = append(mf.Metric, &dto.Metric{Label: []*dto.LabelPair{label("id", fmt.Sprint(i))}, Summary: s})
	}
	return out
}

// histogram at scrape k: per scrape, bucket j receives a observations more
// than bucket j-1 (cumulative), so every count grows and none decreases.
func (g *Generator) histogram(k int, a float64) *dto.Histogram {
	n := uint64(float64(k) * a)
	h := &dto.Histogram{SampleCount: proto.Uint64(n * uint64(len(bounds)+1)), SampleSum: proto.Float64(float64(n) * 1.5)}
	for j, b := range bounds {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(n * uint64(j+1))})
	}
	if g.cfg.NativeHistograms {
		// Schema 0 (bounds powers of two); the same observations spread over
		// buckets 2^-8 … 2^1, n in each, and n in the zero bucket.
		h.Schema, h.ZeroThreshold, h.ZeroCount = proto.Int32(0), proto.Float64(1e-128), proto.Uint64(n)
		h.PositiveSpan = []*dto.BucketSpan{{Offset: proto.Int32(-7), Length: proto.Uint32(uint32(len(bounds)))}}
		deltas := make([]int64, len(bounds))
		if len(deltas) > 0 {
			deltas[0] = int64(n)
		}
		h.PositiveDelta = deltas
	}
	return h
}
