package sink

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Fault is a misbehaviour the sink shows for a while, as a failing backend
// would. The zero Fault (Mode "") means healthy.
type Fault struct {
	// Mode is one of:
	//   "status": answer Status (5xx, 429 or another 4xx), with RetryAfter if set;
	//   "hang":   hold each request without answering until the fault ends
	//             (or the client gives up), then answer 503;
	//   "close":  close the connection without an answer;
	//   "slow":   wait Delay, then accept the request normally.
	Mode       string   `json:"mode"`
	Status     int      `json:"status,omitempty"`
	RetryAfter string   `json:"retry_after,omitempty"` // Retry-After header value, e.g. "5"
	Delay      Duration `json:"delay,omitempty"`
	For        Duration `json:"for"` // how long the fault lasts from when it is set
	// Tenant, when set, limits the fault to the remote-write requests of
	// that tenant (see RecordTenants): a backend failing one tenant only.
	Tenant string `json:"tenant,omitempty"`
}

// Duration is a time.Duration written as "60s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads "1m30s"-style strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"60s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (f Fault) validate(tenants bool) error {
	if f.For <= 0 {
		return fmt.Errorf("fault: \"for\" must be > 0")
	}
	if f.Tenant != "" && !tenants {
		return fmt.Errorf("fault: \"tenant\" needs a sink that records tenants (RecordTenants, -tenant-header)")
	}
	switch f.Mode {
	case "status":
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("fault: status %d is not a 4xx or 5xx", f.Status)
		}
	case "slow":
		if f.Delay <= 0 {
			return fmt.Errorf("fault: slow needs \"delay\" > 0")
		}
	case "hang", "close":
	default:
		return fmt.Errorf("fault: unknown mode %q (status, hang, close, slow)", f.Mode)
	}
	return nil
}

// SetFault makes the sink misbehave as f says, starting now, for f.For.
func (s *Sink) SetFault(f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := f.validate(s.tenantHeader != ""); err != nil {
		return err
	}
	s.fault, s.until = f, time.Now().Add(time.Duration(f.For))
	return nil
}

// ClearFault ends any fault now.
func (s *Sink) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.until = Fault{}, time.Time{}
}

func (s *Sink) currentFault() (Fault, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault.Mode == "" || !time.Now().Before(s.until) {
		return Fault{}, time.Time{}
	}
	return s.fault, s.until
}

// faulty wraps a data handler with the current fault, if any.
func (s *Sink) faulty(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, until := s.currentFault()
		if f.Tenant != "" {
			if tenant, _ := s.tenantOf(r); tenant != f.Tenant {
				f = Fault{} // another tenant's requests are served
			}
		}
		switch f.Mode {
		case "":
			h(w, r)
			return
		case "slow":
			time.Sleep(time.Duration(f.Delay))
			h(w, r)
			return
		}
		s.mu.Lock()
		s.stats.Faulted++
		s.mu.Unlock()
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
		switch f.Mode {
		case "status":
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			http.Error(w, fmt.Sprintf("sink: injected fault: status %d", f.Status), f.Status)
		case "hang":
			select {
			case <-time.After(time.Until(until)):
			case <-r.Context().Done():
			}
			http.Error(w, "sink: injected fault: hung", http.StatusServiceUnavailable)
		case "close":
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			http.Error(w, "sink: injected fault: close", http.StatusServiceUnavailable)
		}
	}
}

func (s *Sink) handleFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&f); err != nil {
		http.Error(w, "sink: fault JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if f.Mode == "" || f.Mode == "none" {
		s.ClearFault()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := s.SetFault(f); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
