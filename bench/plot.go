package main

// A small SVG line chart: time on x, one series on the left axis and one
// on the right, with shaded spans (an outage) and labelled marks.

import (
	"fmt"
	"math"
	"os"
	"strings"
)

// series is one line of a chart.
type series struct {
	name  string
	color string
	y     []float64
}

// span is a shaded interval of x.
type span struct {
	from, to float64
	label    string
}

// chart is a time chart with a left and a right axis.
type chart struct {
	title       string
	x           []float64 // seconds
	left, right series
	// lines, if set, are drawn instead of left and right, all on the left
	// axis, with a legend row each.
	lines []series
	// yLabel names the left axis when lines are drawn.
	yLabel string
	spans  []span
	marks  []span // vertical lines at from, labelled
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

// svg renders the chart.
func (c *chart) svg() string {
	var b strings.Builder
	w, h := float64(plotW-padL-padR), float64(plotH-padT-padB)
	xmax := niceMax(maxOf(c.x))
	if n := len(c.x); n > 0 {
		xmax = math.Ceil(c.x[n-1]/5) * 5
		if xmax == 0 {
			xmax = 5
		}
	}
	lmax, rmax := niceMax(maxOf(c.left.y)*1.05), niceMax(maxOf(c.right.y)*1.05)
	for _, s := range c.lines {
		lmax = max(lmax, niceMax(maxOf(s.y)*1.05))
	}
	px := func(x float64) float64 { return padL + x/xmax*w }
	py := func(y, ymax float64) float64 { return padT + h - y/ymax*h }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padL, esc(c.title))
	for _, s := range c.spans {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="#f4cccc" opacity="0.6"/>`+"\n", px(s.from), padT, px(s.to)-px(s.from), h)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#990000">%s</text>`+"\n", px(s.from)+4, padT+14, esc(s.label))
	}
	// grid and axes
	for i := 0; i <= 5; i++ {
		y := padT + h - float64(i)/5*h
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y, padL+w, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="%s">%s</text>`+"\n", padL-6, y+4, c.left.color, human(lmax*float64(i)/5))
		if c.lines == nil {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", padL+w+6, y+4, c.right.color, human(rmax*float64(i)/5))
		}
	}
	for i := 0; i <= 10; i++ {
		x := padL + float64(i)/10*w
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x, padT+h, x, padT+h+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, padT+h+18, human(xmax*float64(i)/10))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">time (s)</text>`+"\n", padL+w/2, plotH-8)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", padL, padT, w, h)
	for _, s := range c.marks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="4 3"/>`+"\n", px(s.from), padT, px(s.from), padT+h)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", px(s.from)+4, padT+30, esc(s.label))
	}
	line := func(s series, ymax float64) {
		var pts []string
		for i, y := range s.y {
			if i < len(c.x) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(c.x[i]), py(y, ymax)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
	}
	if c.lines != nil {
		for i, s := range c.lines {
			line(s, lmax)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="14" height="4" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", px(0)+8, float64(padT+12+16*i), s.color, px(0)+26, float64(padT+18+16*i), esc(s.name))
		}
		fmt.Fprintf(&b, `<text x="16" y="%.1f" transform="rotate(-90 16 %.1f)" text-anchor="middle">%s</text>`+"\n", padT+h/2, padT+h/2, esc(c.yLabel))
		b.WriteString("</svg>\n")
		return b.String()
	}
	line(c.left, lmax)
	line(c.right, rmax)
	// legend
	fmt.Fprintf(&b, `<rect x="%.1f" y="34" width="14" height="4" fill="%s"/><text x="%.1f" y="40">%s (left axis)</text>`+"\n", px(0), c.left.color, px(0)+18, esc(c.left.name))
	fmt.Fprintf(&b, `<rect x="%.1f" y="34" width="14" height="4" fill="%s"/><text x="%.1f" y="40">%s (right axis)</text>`+"\n", px(0)+300, c.right.color, px(0)+318, esc(c.right.name))
	b.WriteString("</svg>\n")
	return b.String()
}

// write saves the chart at path.
func (c *chart) write(path string) error {
	return os.WriteFile(path, []byte(c.svg()), 0o644)
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
