package main

import (
	"image/color"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// plotCosts draws the director's cost per packet (median ns) of every
// scenario as horizontal bars: gvs in blue, the peers in grey.
func plotCosts(path string, rows []row) error {
	var names []string
	var gvs, peers plotter.Values
	for _, r := range rows {
		if strings.HasPrefix(r.name, "no director") || len(r.cost) == 0 {
			continue
		}
		name := " " + r.name // room for the first letter
		if r.group == "trafgen" {
			name += " [trafgen]"
		} else {
			name += " [live]"
		}
		names = append(names, name)
		v := median(r.cost)
		if r.peer {
			gvs, peers = append(gvs, 0), append(peers, v)
		} else {
			gvs, peers = append(gvs, v), append(peers, 0)
		}
	}
	// NominalY counts from the bottom: reverse so the first row is on top.
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
		gvs[i], gvs[j] = gvs[j], gvs[i]
		peers[i], peers[j] = peers[j], peers[i]
	}
	p := plot.New()
	p.Title.Text = "Director cost per packet (median ns, 64-byte frames, IPv6 84; lower is better)"
	p.X.Label.Text = "ns per packet"
	p.X.Min = 0
	top := 0.0
	for i := range gvs {
		top = max(top, gvs[i], peers[i])
	}
	p.X.Max = top * 1.08
	w := vg.Points(9)
	for _, s := range []struct {
		v   plotter.Values
		c   color.Color
		lbl string
	}{{gvs, color.RGBA{R: 31, G: 119, B: 180, A: 255}, "gvs"}, {peers, color.Gray{Y: 150}, "peers"}} {
		bars, err := plotter.NewBarChart(s.v, w)
		if err != nil {
			return err
		}
		bars.Horizontal = true
		bars.Color = s.c
		bars.LineStyle.Width = 0
		p.Add(bars)
		p.Legend.Add(s.lbl, bars)
	}
	p.Legend.Top = true
	p.NominalY(names...)
	return p.Save(10*vg.Inch, vg.Length(len(names))*0.35*vg.Inch+1.5*vg.Inch, path)
}
