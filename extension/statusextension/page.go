package statusextension

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/statusapi"
)

//go:embed templates
var templateFS embed.FS

// page is parsed once: the templates are part of the binary.
var page = template.Must(template.New("").Funcs(template.FuncMap{
	"ago":   ago,
	"dur":   func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"bytes": humanBytes,
	"secs":  func(s float64) string { return (time.Duration(s * float64(time.Second))).Round(time.Second).String() },
	"rate":  func(r float64) string { return strconv.FormatFloat(r, 'f', 1, 64) },
	"pct": func(n, of int64) string {
		if of <= 0 {
			return "0"
		}
		return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 1, 64)
	},
}).ParseFS(templateFS, "templates/*.html", "templates/*.css"))

// routes: every link on the pages is relative (./, dropped, api/...), so
// the pages work wherever they are mounted: behind kubectl port-forward,
// or under a proxy's path prefix.
func (s *status) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.html("overview", func() any { return s.overview() }))
	mux.HandleFunc("GET /dropped", s.html("dropped", func() any { return s.droppedTargets() }))
	mux.Handle("GET /api/v1/status", jsonHandler(s.snapshot))
	mux.Handle("GET /api/v1/targets", jsonHandler(func() map[string][]Target { return map[string][]Target{"targets": s.activeTargets()} }))
	mux.Handle("GET /api/v1/dropped", jsonHandler(s.droppedTargets))
	mux.Handle("GET /api/v1/pipelines", jsonHandler(func() map[string][]Pipeline { return map[string][]Pipeline{"pipelines": s.configuredPipelines()} }))
	mux.Handle("GET /api/v1/cluster", jsonHandler(func() map[string][]Cluster { return map[string][]Cluster{"clusters": s.clusters()} }))
	mux.Handle("GET /api/v1/queues", jsonHandler(func() map[string][]Endpoint { return map[string][]Endpoint{"endpoints": s.endpoints()} }))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Nothing on the pages comes from elsewhere or runs: say so to the
		// browser, so an injected label value could not either.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// pageData is what every page template gets.
type pageData struct {
	Page    string
	Now     time.Time
	Refresh int // seconds; 0: no automatic refresh
	Data    any
}

func (s *status) html(name string, data func() any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := pageData{Page: name, Now: time.Now(), Data: data()}
		if n, err := strconv.Atoi(r.URL.Query().Get("refresh")); err == nil && n > 0 && n <= 3600 {
			d.Refresh = n
		}
		var buf bytes.Buffer
		if err := page.ExecuteTemplate(&buf, name+".html", d); err != nil {
			s.set.Logger.Error("Status page: rendering failed", zap.String("page", name), zap.Error(err))
			http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	}
}

// overview is the main page's data: targets grouped by job, the pipeline
// graph with what each node reports, and the endpoints.
type overview struct {
	Jobs      []jobView
	Up, Down  int
	Lanes     []laneView
	Endpoints []Endpoint
	Failing   int
	Dropped   int
	Clusters  []Cluster
}

type jobView struct {
	Receiver, Job string
	Up, Down      int
	Targets       []Target
}

type laneView struct {
	ID                               string
	Receivers, Processors, Exporters []nodeView
}

type nodeView struct {
	ID    string
	Note  string
	Class string // "ok", "bad", "connector" or ""
}

func (s *status) overview() overview {
	var o overview
	targets := s.activeTargets()
	byJob := map[[2]string]*jobView{}
	perReceiver := map[string][2]int{} // up, down
	for _, t := range targets {
		k := [2]string{t.Receiver, t.Job}
		j := byJob[k]
		if j == nil {
			j = &jobView{Receiver: t.Receiver, Job: t.Job}
			byJob[k] = j
		}
		j.Targets = append(j.Targets, t)
		c := perReceiver[t.Receiver]
		switch t.Health {
		case statusapi.HealthUp:
			j.Up++
			o.Up++
			c[0]++
		case statusapi.HealthDown:
			j.Down++
			o.Down++
			c[1]++
		}
		perReceiver[t.Receiver] = c
	}
	for _, j := range byJob {
		// Down targets first: they are what one comes to look for.
		sort.SliceStable(j.Targets, func(a, b int) bool {
			return j.Targets[a].Health == statusapi.HealthDown && j.Targets[b].Health != statusapi.HealthDown
		})
		o.Jobs = append(o.Jobs, *j)
	}
	sort.Slice(o.Jobs, func(a, b int) bool {
		if o.Jobs[a].Receiver != o.Jobs[b].Receiver {
			return o.Jobs[a].Receiver < o.Jobs[b].Receiver
		}
		return o.Jobs[a].Job < o.Jobs[b].Job
	})
	for _, c := range s.droppedTargets().Counts {
		for _, n := range c {
			o.Dropped += n
		}
	}

	o.Clusters = s.clusters()
	o.Endpoints = s.endpoints()
	perExporter := map[string][]Endpoint{}
	for _, ep := range o.Endpoints {
		perExporter[ep.Exporter] = append(perExporter[ep.Exporter], ep)
		if ep.Failing {
			o.Failing++
		}
	}
	pipelines := s.configuredPipelines()
	conn := connectors(pipelines)
	for _, p := range pipelines {
		l := laneView{ID: p.ID}
		for _, id := range p.Receivers {
			n := nodeView{ID: id}
			if c, ok := perReceiver[id]; ok {
				n.Note, n.Class = fmt.Sprintf("%d up · %d down", c[0], c[1]), "ok"
				if c[1] > 0 {
					n.Class = "bad"
				}
			}
			if conn[id] {
				n.Class, n.Note = "connector", "connector"
			}
			l.Receivers = append(l.Receivers, n)
		}
		for _, id := range p.Processors {
			l.Processors = append(l.Processors, nodeView{ID: id})
		}
		for _, id := range p.Exporters {
			n := nodeView{ID: id}
			if eps, ok := perExporter[id]; ok {
				var queued int64
				n.Class = "ok"
				for _, ep := range eps {
					queued += ep.QueueBytes
					if ep.Failing {
						n.Class = "bad"
					}
				}
				n.Note = "backlog " + humanBytes(queued)
				if n.Class == "bad" {
					n.Note += " · failing"
				}
			}
			if conn[id] {
				n.Class, n.Note = "connector", "connector"
			}
			l.Exporters = append(l.Exporters, n)
		}
		o.Lanes = append(o.Lanes, l)
	}
	return o
}

// ago says how long before now t was, as "3.2s ago"; "never" for zero.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < time.Minute {
		return d.Round(100*time.Millisecond).String() + " ago"
	}
	return d.Round(time.Second).String() + " ago"
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}
