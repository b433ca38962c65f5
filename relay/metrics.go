package relay

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bucketrelay/bucketrelay/wal"
)

// metrics exposes the relay in the Prometheus text format. Target figures
// are read from the engine at scrape time, so the hot path only counts
// ingest.
type metrics struct {
	r        *Relay
	reg      *prometheus.Registry
	ingested prometheus.Counter
	latency  prometheus.Histogram

	delivered, retried, quarantined, sends *prometheus.Desc
	pending, oldest, up                    *prometheus.Desc
	dropped, pendingBytes                  *prometheus.Desc
	redriven, paused, resent               *prometheus.Desc
	walEvents, walBytes, walFile, walLast  *prometheus.Desc
	walMaxEvents, walMaxBytes              *prometheus.Desc
	walDamaged                             *prometheus.Desc
}

// sendsHelp is relay_target_sends_total's help, which the README quotes:
// the counter counts Send calls that succeeded, not events (a batch holds
// one or more) nor requests (the webhook posts each event of a batch).
const sendsHelp = "Successful batch sends to the target: one per batch of one or more events delivered, however many requests the kind makes for it (relay_target_delivered_total counts the events)."

func newMetrics(r *Relay) *metrics {
	m := &metrics{r: r, reg: prometheus.NewRegistry()}
	m.ingested = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "relay_ingest_events_total", Help: "Event records accepted by Publish (routed or not).",
	})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "relay_ingest_latency_seconds", Help: "Time from Publish to durable acknowledgement, per call.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
	})
	t := []string{"target"}
	m.delivered = prometheus.NewDesc("relay_target_delivered_total", "Events delivered to the target (or superseded by a newer state of their key).", t, nil)
	m.retried = prometheus.NewDesc("relay_target_retried_total", "Failed sends that were retried.", t, nil)
	m.quarantined = prometheus.NewDesc("relay_target_quarantined_total", "Events the target rejected for good, moved to its quarantine.", t, nil)
	m.sends = prometheus.NewDesc("relay_target_sends_total", sendsHelp, t, nil)
	m.pending = prometheus.NewDesc("relay_target_lag_events", "Events routed to the target and not yet delivered.", t, nil)
	m.oldest = prometheus.NewDesc("relay_target_oldest_pending_seconds", "Age of the oldest event pending for the target (0 when none).", t, nil)
	m.dropped = prometheus.NewDesc("relay_target_dropped_total", "Events not routed to the target because its bound was reached and its whenFull policy is drop.", t, nil)
	m.pendingBytes = prometheus.NewDesc("relay_target_pending_bytes", "Event bytes routed to the target that its cursor has not passed, by whole frames (what maxPendingBytes bounds).", t, nil)
	m.up = prometheus.NewDesc("relay_target_up", "1 if the target's last send succeeded (or, before any send, its probe did).", t, nil)
	m.redriven = prometheus.NewDesc("relay_target_redriven_total", "Quarantined events re-driven and delivered.", t, nil)
	m.resent = prometheus.NewDesc("relay_target_resent_total", "Events sent again because a batch before them in flight failed (the target may hold them twice).", t, nil)
	m.paused = prometheus.NewDesc("relay_target_paused", "1 while the target's delivery is paused.", t, nil)
	m.walEvents = prometheus.NewDesc("relay_wal_events", "Event records held by the write-ahead log.", nil, nil)
	m.walBytes = prometheus.NewDesc("relay_wal_record_bytes", "Record bytes held by the log, uncompressed.", nil, nil)
	m.walFile = prometheus.NewDesc("relay_wal_file_bytes", "Size of the log file on disk.", nil, nil)
	m.walLast = prometheus.NewDesc("relay_wal_last_sequence", "Sequence of the last durable record.", nil, nil)
	// The limits, so alerts compute how full the log is without knowing
	// the configuration.
	m.walMaxEvents = prometheus.NewDesc("relay_wal_limit_events", "The log's bound on events (relay.queueLimit).", nil, nil)
	m.walMaxBytes = prometheus.NewDesc("relay_wal_limit_bytes", "The log's bound on record bytes (relay.queueLimitBytes).", nil, nil)
	m.walDamaged = prometheus.NewDesc("relay_wal_damaged_frames", "Damaged frames met in the log since it was opened; their records are quarantined for the targets that needed them.", nil, nil)
	// The ingest gate's parked requests (ingestgate.go): read at scrape
	// time, so the hot path only adds to an atomic.
	waits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "relay_ingest_waits_total", Help: "Ingest requests (POST /v1/events, Publish) that waited for a free slot of relay.ingestConcurrency before parsing their records.",
	}, func() float64 { return float64(r.gate.waits()) })
	slots := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "relay_ingest_slots", Help: "Ingest requests that may parse records at once now: relay.ingestConcurrency, one less while a target that is up falls behind (0: no bound).",
	}, func() float64 { return float64(r.gate.width()) })
	heldBack := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "relay_ingest_held_back_total", Help: "Times ingest was narrowed by one slot because a target that is up fell behind.",
	}, func() float64 { return float64(r.gate.heldBack()) })
	m.reg.MustRegister(m.ingested, m.latency, waits, slots, heldBack, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeIngest(n int, d time.Duration) {
	m.ingested.Add(float64(n))
	m.latency.Observe(d.Seconds())
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.delivered, m.retried, m.quarantined, m.sends, m.pending, m.oldest, m.up, m.dropped, m.pendingBytes, m.redriven, m.paused, m.resent, m.walEvents, m.walBytes, m.walFile, m.walLast, m.walMaxEvents, m.walMaxBytes, m.walDamaged} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, s := range m.r.eng.Stats() {
		ch <- prometheus.MustNewConstMetric(m.delivered, prometheus.CounterValue, float64(s.Delivered), s.ID)
		ch <- prometheus.MustNewConstMetric(m.retried, prometheus.CounterValue, float64(s.Retried), s.ID)
		ch <- prometheus.MustNewConstMetric(m.quarantined, prometheus.CounterValue, float64(s.Quarantined), s.ID)
		ch <- prometheus.MustNewConstMetric(m.sends, prometheus.CounterValue, float64(s.Sends), s.ID)
		ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(max(s.Pending, 0)), s.ID)
		age := 0.0
		if t, ok := m.r.eng.OldestPending(s.ID); ok {
			age = now.Sub(t).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(m.oldest, prometheus.GaugeValue, age, s.ID)
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, up, s.ID)
		if ll, ok := m.r.log.(limitLog); ok { // the cluster log has no per-target bound
			ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(ll.Dropped(s.ID)), s.ID)
			_, pb := ll.Pending(s.ID)
			ch <- prometheus.MustNewConstMetric(m.pendingBytes, prometheus.GaugeValue, float64(pb), s.ID)
		}
		ch <- prometheus.MustNewConstMetric(m.redriven, prometheus.CounterValue, float64(s.Redriven), s.ID)
		ch <- prometheus.MustNewConstMetric(m.resent, prometheus.CounterValue, float64(s.Resent), s.ID)
		paused := 0.0
		if s.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(m.paused, prometheus.GaugeValue, paused, s.ID)
	}
	ch <- prometheus.MustNewConstMetric(m.walEvents, prometheus.GaugeValue, float64(m.r.log.Events()))
	ch <- prometheus.MustNewConstMetric(m.walBytes, prometheus.GaugeValue, float64(m.r.log.Bytes()))
	ch <- prometheus.MustNewConstMetric(m.walLast, prometheus.GaugeValue, float64(m.r.log.LastSeq()))
	l, ok := m.r.log.(*wal.Log)
	if !ok {
		return // the cluster log: lane metrics come from clusterMetrics
	}
	ch <- prometheus.MustNewConstMetric(m.walFile, prometheus.GaugeValue, float64(l.FileSize()))
	ch <- prometheus.MustNewConstMetric(m.walDamaged, prometheus.GaugeValue, float64(len(l.DamageMet())))
	maxEvents, maxBytes := m.r.cfg.Relay.QueueLimit, m.r.cfg.Relay.QueueLimitBytes
	if maxEvents <= 0 {
		maxEvents = wal.DefaultMaxEvents
	}
	if maxBytes <= 0 {
		maxBytes = wal.DefaultMaxBytes
	}
	ch <- prometheus.MustNewConstMetric(m.walMaxEvents, prometheus.GaugeValue, float64(maxEvents))
	ch <- prometheus.MustNewConstMetric(m.walMaxBytes, prometheus.GaugeValue, float64(maxBytes))
}
