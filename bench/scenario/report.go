package scenario

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// SluiceName is the system the ratios are computed for.
const SluiceName = "sluice"

// Table renders one workload's results as a Markdown table, then the ratios
// of Sluice to each reference that ran in the same run.
func Table(w Workload, results []Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", w)
	b.WriteString("| system | samples/s delivered | CPU s per M samples | peak RSS MiB | of it anonymous MiB | disk MB per M samples | lost | duplicates | out of order | drain s |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | not run: %s | | | | | | | | |\n", r.System, oneLine(r.Err.Error()))
			continue
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.0f | %.0f | %.1f | %d of %d | %d | %d | %s |\n",
			r.System, r.SamplesPerSec, r.CPUPerMillion, float64(r.PeakRSS)/(1<<20), float64(r.PeakAnon)/(1<<20), r.DiskPerMillion/1e6,
			r.Lost(), r.Served, r.Duplicates, r.OutOfOrder, drain(r))
	}
	b.WriteString("\n")
	b.WriteString(ratios(results))
	return b.String()
}

func drain(r Result) string {
	switch {
	case !r.Outage:
		return "n/a"
	case !r.Drained:
		return "not caught up"
	default:
		return fmt.Sprintf("%.0f", r.DrainSeconds)
	}
}

// ratios compares Sluice with each reference measured in the same run: below
// 1 means Sluice used less.
func ratios(results []Result) string {
	var sl *Result
	for i := range results {
		if results[i].System == SluiceName && results[i].Err == nil {
			sl = &results[i]
		}
	}
	if sl == nil {
		return "Ratios: Sluice was not measured in this run (its scrape receiver and remote_write exporter are not built yet), so there is nothing to compare; the rows above are the baseline.\n"
	}
	var b strings.Builder
	b.WriteString("| Sluice ÷ | CPU per sample | peak RSS | anonymous RSS | disk per sample |\n|---|---:|---:|---:|---:|\n")
	for _, r := range results {
		if r.System == SluiceName || r.Err != nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.System,
			ratio(sl.CPUPerMillion, r.CPUPerMillion), ratio(float64(sl.PeakRSS), float64(r.PeakRSS)),
			ratio(float64(sl.PeakAnon), float64(r.PeakAnon)), ratio(sl.DiskPerMillion, r.DiskPerMillion))
	}
	return b.String()
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// WriteResults appends a run to RESULTS.md: when, on what, with which
// versions, by which command, and the tables.
func WriteResults(w io.Writer, header, machine, versions, command string, tables []string) error {
	_, err := fmt.Fprintf(w, "\n## %s\n\n- machine: %s\n- versions: %s\n- command: `%s`\n\n%s\n", header, machine, versions, command, strings.Join(tables, "\n"))
	return err
}

// Markers around the README's benchmark block.
const (
	readmeStart = "<!-- bench:start -->"
	readmeEnd   = "<!-- bench:end -->"
)

// UpdateReadme replaces the README's benchmark block with the latest tables.
func UpdateReadme(path, header, command string, tables []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, readmeStart), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s block", path, readmeStart, readmeEnd)
	}
	block := fmt.Sprintf("%s\nLatest run: %s, by `%s`. Every run is in [bench/RESULTS.md](bench/RESULTS.md).\n\n%s\n%s",
		readmeStart, header, command, strings.Join(tables, "\n"), readmeEnd)
	return os.WriteFile(path, []byte(s[:i]+block+s[j+len(readmeEnd):]), 0o644)
}

// ScrapeTable renders the scrape-only comparison, with Sluice's receiver
// over the contrib one.
func ScrapeTable(w Workload, results []ScrapeResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s — scrape only (receiver -> debug exporter)\n\n", w)
	b.WriteString("| receiver | samples scraped/s | CPU s per M samples scraped | peak RSS MiB | RSS bytes per active series | peak anonymous MiB | anonymous bytes per active series |\n|---|---:|---:|---:|---:|---:|---:|\n")
	var sl, ref *ScrapeResult
	for i, r := range results {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | not run: %s | | | | | |\n", r.System, oneLine(r.Err.Error()))
			continue
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.0f | %.0f | %.0f | %.0f |\n", r.System, r.SamplesPerSec, r.CPUPerMillion,
			float64(r.PeakRSS)/(1<<20), r.RSSPerSeries, float64(r.PeakAnon)/(1<<20), r.AnonPerSeries)
		switch r.System {
		case "sluice-receiver":
			sl = &results[i]
		case "contrib-receiver":
			ref = &results[i]
		}
	}
	if sl != nil && ref != nil {
		fmt.Fprintf(&b, "\nSluice's receiver ÷ contrib's: CPU per sample %s, RSS per series %s, anonymous RSS per series %s.\n",
			ratio(sl.CPUPerMillion, ref.CPUPerMillion), ratio(sl.RSSPerSeries, ref.RSSPerSeries), ratio(sl.AnonPerSeries, ref.AnonPerSeries))
	}
	return b.String()
}

// Machine describes where the run happened.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%d cores (%s), Linux %s, %s", runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version())
}
