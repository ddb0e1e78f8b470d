package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the plan as indented JSON.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return fmt.Errorf("write plan json: %w", err)
	}
	return nil
}

// num formats a count with thousands separators.
func num(x float64) string {
	s := strconv.FormatInt(int64(math.Round(x)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func usd(x float64) string {
	whole := math.Floor(x)
	return "$" + num(whole) + fmt.Sprintf(".%02d", int(math.Round((x-whole)*100))%100)
}

func span(a, b time.Time) string {
	a, b = a.UTC(), b.UTC()
	if a.Format("2006-01-02") == b.Format("2006-01-02") {
		return a.Format("2006-01-02 15:04") + "–" + b.Format("15:04")
	}
	return a.Format("2006-01-02 15:04") + "–" + b.Format("01-02 15:04")
}

// WriteTable writes the plan for people: the windows, the Firehose streams
// and the dead-letter queue at the peak, the actions and the cost.
func (p *Plan) WriteTable(w io.Writer) error {
	s := p.settings
	ew := &errWriter{w: w}
	ew.printf("Capacity plan: %s, Kinesis %s, %.0f%% headroom, %s requests/s per task. Times are UTC.\n\n", p.Region, p.KinesisMode, s.Headroom*100, num(s.TaskRequestsPerSecond))

	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	kcol := "SHARDS"
	if p.KinesisMode == OnDemand {
		kcol = "WRITE MiB/s"
	}
	fmt.Fprintf(tw, "WINDOW\tREQ/S\tEVENTS/S\tTASKS\t%s\tROUTER\tLAMBDA\t\n", kcol)
	row := func(name string, c Capacity) {
		k := c.KinesisShards
		if p.KinesisMode == OnDemand {
			k = c.KinesisWriteMiBps
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", name, num(c.RequestsPerSecond), num(c.EventsPerSecond), c.FargateTasks, k, c.RouterConcurrency, c.LambdaConcurrency)
	}
	row("baseline", p.Baseline)
	for _, win := range p.Windows {
		row(span(win.Start, win.End), win.Capacity)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write plan table: %w", err)
	}
	ew.printf("\n")
	for _, win := range p.Windows {
		ew.printf("%s  %s\n", span(win.Start, win.End), strings.Join(nonEmpty(win.Broadcasts, "(held between broadcasts)"), " + "))
	}

	peak := p.peak()
	ew.printf("\nFirehose streams at the peak (%s, design rate; quota per stream: %s records/s, %s calls/s, %g MiB/s):\n", span(peak.Start, peak.End), num(s.Quotas.FirehoseRecordsPerSecond), num(s.Quotas.FirehoseRequestsPerSecond), s.Quotas.FirehoseMiBps)
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "TYPE\tEVENTS/S\tRECORDS/S\tCALLS/S\tMiB/s\tBILLED MiB/s\tUSE\t\n")
	for _, f := range peak.Firehose {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.0f%%\t\n", f.Type, num(f.EventsPerSecond), num(f.RecordsPerSecond), num(f.RequestsPerSecond), f.MiBPerSecond, f.BilledMiBPerSecond, f.Utilisation*100)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write plan table: %w", err)
	}
	if s.FirehosePackBytes > 0 {
		ew.printf("The router packs each invocation's events of a type into records of up to %s bytes, so Firehose's 5 KB billing rounding is paid per pack, not per event.\n", num(float64(s.FirehosePackBytes)))
	} else {
		ew.printf("One event per Firehose record: every %d-byte event is billed as 5 KB.\n", s.EventBytes)
	}

	o := peak.SQS
	ew.printf("\nSQS dead-letter queue if Kinesis is down %s at the peak: %s messages/s (%s SendMessageBatch calls/s, %.1f MiB/s), backlog %s messages, %.1f GiB.\n",
		s.OutageDuration, num(o.MessagesPerSecond), num(o.SendCallsPerSecond), o.MiBPerSecond, num(o.BacklogMessages), o.BacklogGiB)

	var warnings []string
	for _, win := range p.Windows {
		for _, q := range win.QuotaWarnings {
			warnings = append(warnings, span(win.Start, win.End)+": "+q)
		}
	}
	for _, q := range p.Baseline.QuotaWarnings {
		warnings = append(warnings, "baseline: "+q)
	}
	warnings = append(warnings, p.Warnings...)
	ew.printf("\nQuota warnings:\n")
	if len(warnings) == 0 {
		ew.printf("  none\n")
	}
	for _, q := range dedupe(warnings) {
		ew.printf("  - %s\n", q)
	}

	ew.printf("\nActions:\n")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	for _, a := range p.Actions {
		switch a.Kind {
		case ActionECS:
			fmt.Fprintf(tw, "  %s\tECS\t%s min=%d max=%d\t%s\n", a.At.UTC().Format("2006-01-02 15:04"), a.Name, a.MinCapacity, a.MaxCapacity, a.Reason)
		case ActionShardCount:
			fmt.Fprintf(tw, "  %s\tKinesis\tUpdateShardCount %d→%d\t%s\n", a.At.UTC().Format("2006-01-02 15:04"), a.FromShards, a.TargetShards, a.Reason)
		case ActionWarmThroughput:
			fmt.Fprintf(tw, "  %s\tKinesis\tUpdateStreamWarmThroughput %d MiB/s\t%s\n", a.At.UTC().Format("2006-01-02 15:04"), a.WarmThroughputMiBps, a.Reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write plan table: %w", err)
	}

	c := p.MonthlyCost
	ew.printf("\nMonthly cost (USD, baseline month + this schedule): %s events (%s a day on the everyday mean: %s requests/min × %g %s a request), %.0f events a Kinesis record\n",
		num(c.Events), num(s.DailyEvents()), num(s.meanRPM()), s.EventsPerRequest, plural(s.EventsPerRequest, "event", "events"), s.eventsPerRecord())
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	for _, l := range c.Lines {
		fmt.Fprintf(tw, "  %s\t%s\t%11s\t%s\n", l.Service, l.Item, usd(l.USD), l.Assumption)
	}
	fmt.Fprintf(tw, "  total\t\t%11s\t$%.4f per million events\n", usd(c.Total), c.PerMillionEvents)
	fmt.Fprintf(tw, "  of which broadcasts\t\t%11s\t\n", usd(c.BroadcastExtra))
	fmt.Fprintf(tw, "  month 12\t\t%11s\tthe lake eleven months larger\n", usd(c.Month12Total))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write plan table: %w", err)
	}
	return ew.err
}

// peak is the window with the most traffic (the baseline when none).
func (p *Plan) peak() Window {
	best := Window{Capacity: p.Baseline}
	for _, w := range p.Windows {
		if w.RequestsPerSecond > best.RequestsPerSecond {
			best = w
		}
	}
	return best
}

func plural(n float64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func nonEmpty(xs []string, alt string) []string {
	if len(xs) == 0 {
		return []string{alt}
	}
	return xs
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}
