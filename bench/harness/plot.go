package harness

// A small SVG line chart: time on x, one series on the left axis and one
// on the right, with shaded spans (an outage) and labelled marks.

import (
	"fmt"
	"math"
	"os"
	"strings"
)

// Series is one line of a Chart.
type Series struct {
	// Name is the legend label.
	Name string
	// Color is an SVG color.
	Color string
	// Y holds one value per Chart.X.
	Y []float64
}

// Span is a shaded interval of x.
type Span struct {
	// From and To are seconds on the x axis (a mark uses From only).
	From, To float64
	// Label is written beside the span.
	Label string
}

// Chart is a time chart with a left and a right axis.
type Chart struct {
	// Title is written above the plot.
	Title string
	// X is the time of each sample, in seconds.
	X []float64
	// Left and Right are the series of the two axes.
	Left, Right Series
	// Lines, if set, are drawn instead of left and right, all on the left
	// axis, with a legend row each.
	Lines []Series
	// YLabel names the left axis when lines are drawn.
	YLabel string
	// Spans are shaded intervals (an outage).
	Spans []Span
	// Marks are vertical lines at their From, labelled.
	Marks []Span
}

const (
	plotW, plotH           = 860, 420
	padL, padR, padT, padB = 80, 80, 50, 50
)

// niceMax rounds v up to a round multiple (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8)
// of a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// SVG renders the Chart.
func (c *Chart) SVG() string {
	var b strings.Builder
	w, h := float64(plotW-padL-padR), float64(plotH-padT-padB)
	xmax := niceMax(maxOf(c.X))
	if n := len(c.X); n > 0 {
		xmax = math.Ceil(c.X[n-1]/5) * 5
		if xmax == 0 {
			xmax = 5
		}
	}
	lmax, rmax := niceMax(maxOf(c.Left.Y)*1.05), niceMax(maxOf(c.Right.Y)*1.05)
	for _, s := range c.Lines {
		lmax = max(lmax, niceMax(maxOf(s.Y)*1.05))
	}
	px := func(x float64) float64 { return padL + x/xmax*w }
	py := func(y, ymax float64) float64 { return padT + h - y/ymax*h }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padL, esc(c.Title))
	for _, s := range c.Spans {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="#f4cccc" opacity="0.6"/>`+"\n", px(s.From), padT, px(s.To)-px(s.From), h)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#990000">%s</text>`+"\n", px(s.From)+4, padT+14, esc(s.Label))
	}
	// grid and axes
	for i := 0; i <= 5; i++ {
		y := padT + h - float64(i)/5*h
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y, padL+w, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="%s">%s</text>`+"\n", padL-6, y+4, c.Left.Color, human(lmax*float64(i)/5))
		if c.Lines == nil {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", padL+w+6, y+4, c.Right.Color, human(rmax*float64(i)/5))
		}
	}
	for i := 0; i <= 10; i++ {
		x := padL + float64(i)/10*w
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x, padT+h, x, padT+h+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, padT+h+18, human(xmax*float64(i)/10))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">time (s)</text>`+"\n", padL+w/2, plotH-8)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", padL, padT, w, h)
	for _, s := range c.Marks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="4 3"/>`+"\n", px(s.From), padT, px(s.From), padT+h)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", px(s.From)+4, padT+30, esc(s.Label))
	}
	line := func(s Series, ymax float64) {
		var pts []string
		for i, y := range s.Y {
			if i < len(c.X) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(c.X[i]), py(y, ymax)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.Color, strings.Join(pts, " "))
	}
	if c.Lines != nil {
		for i, s := range c.Lines {
			line(s, lmax)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="14" height="4" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", px(0)+8, float64(padT+12+16*i), s.Color, px(0)+26, float64(padT+18+16*i), esc(s.Name))
		}
		fmt.Fprintf(&b, `<text x="16" y="%.1f" transform="rotate(-90 16 %.1f)" text-anchor="middle">%s</text>`+"\n", padT+h/2, padT+h/2, esc(c.YLabel))
		b.WriteString("</svg>\n")
		return b.String()
	}
	line(c.Left, lmax)
	line(c.Right, rmax)
	// legend
	fmt.Fprintf(&b, `<rect x="%.1f" y="34" width="14" height="4" fill="%s"/><text x="%.1f" y="40">%s (left axis)</text>`+"\n", px(0), c.Left.Color, px(0)+18, esc(c.Left.Name))
	fmt.Fprintf(&b, `<rect x="%.1f" y="34" width="14" height="4" fill="%s"/><text x="%.1f" y="40">%s (right axis)</text>`+"\n", px(0)+300, c.Right.Color, px(0)+318, esc(c.Right.Name))
	b.WriteString("</svg>\n")
	return b.String()
}

// Write saves the Chart at path.
func (c *Chart) Write(path string) error {
	return os.WriteFile(path, []byte(c.SVG()), 0o644)
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	default:
		return trimZero(fmt.Sprintf("%.1f", v))
	}
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
