package gendump

import (
	"bufio"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Route is an origin→destination pair of port codes.
type Route struct {
	Orig, Dest string
}

// busyRoutes carry a fixed share of every day's prices, whatever the seed: tens of prices a
// day in the default dump, thousands in a dump of ten million.
var busyRoutes = []struct {
	orig, dest string
	share      float64
}{
	{"CNSHA", "NLRTM", 0.04},
	{"CNYTN", "USLAX", 0.025},
}

// BusyRoutes returns the routes with the most prices per day, busiest first.
func BusyRoutes() []Route {
	out := make([]Route, len(busyRoutes))
	for i, b := range busyRoutes {
		out[i] = Route{b.orig, b.dest}
	}
	return out
}

// lane is a trade between two world areas (root regions): how many of the routes it gets, and
// the range of its routes' base prices (per container, USD-like). Headhaul lanes out of Asia
// are dear, their backhauls cheap; most routes join different areas.
type lane struct {
	from, to string
	weight   float64
	lo, hi   float64
}

var lanes = []lane{
	{"asia", "europe", 25, 1800, 3200},
	{"asia", "americas", 22, 1600, 3000},
	{"europe", "americas", 12, 1200, 2200},
	{"americas", "europe", 10, 700, 1500},
	{"europe", "asia", 8, 500, 1100},
	{"americas", "asia", 7, 500, 1000},
	{"asia", "oceania", 4, 900, 1600},
	{"asia", "africa", 4, 1400, 2600},
	{"europe", "africa", 4, 1200, 2400},
	{"africa", "europe", 2, 800, 1500},
	{"oceania", "asia", 2, 500, 1000},
	{"asia", "asia", 6, 300, 900},
	{"europe", "europe", 4, 400, 1000},
	{"americas", "americas", 3, 600, 1400},
}

// Routes scale with the number of prices per day: the default dump (about 1,600 a day) has
// refRoutes of them; a dump with k times as many prices per day has √k times as many routes,
// each with √k times as many prices a day.
const (
	refRoutes   = 300
	refPerDay   = float64(DefaultPrices) / DefaultDays
	minRoutes   = 12
	maxRoutes   = 10_000
	outlierRate = 0.004
)

// route is the state of one route while its prices are drawn.
type route struct {
	prefix []byte  // "ORIG\tDEST\t"
	base   float64 // typical price
	volume float64 // relative number of prices a day; 0 for a busy route
	share  float64 // busy route: share of every day's prices
	gap    float64 // probability of a day without prices
	drift  float64 // pull of the price level, per day
	level  float64 // log of the current price level relative to base
}

type priceGen struct {
	rng    *rand.Rand
	routes []route
	days   []string // the dates, formatted
	totals []int    // prices per day, summing to Options.Prices
}

func newPriceGen(opts Options) *priceGen {
	rng := rand.New(rand.NewPCG(opts.Seed, streamData))
	g := &priceGen{rng: rng}
	perDay := float64(opts.Prices) / float64(opts.Days)
	n := int(math.Round(refRoutes * math.Sqrt(perDay/refPerDay)))
	g.routes = pickRoutes(rng, min(max(n, minRoutes), maxRoutes))
	for d := range opts.Days {
		g.days = append(g.days, opts.Start.AddDate(0, 0, d).Format(time.DateOnly))
	}
	g.totals = splitDays(rng, opts.Prices, opts.Start, opts.Days)
	return g
}

// pickRoutes chooses n distinct routes: the busy ones, then routes drawn lane by lane
// between ports weighted by their size.
func pickRoutes(rng *rand.Rand, n int) []route {
	p := newRoutePicker(rng)
	p.addBusy(n)
	p.addByLane(n)
	p.addInOrder(n)
	return p.routes
}

// routePicker collects distinct routes. Every random draw comes from rng in a fixed order, so a
// seed always gives the same routes.
type routePicker struct {
	rng    *rand.Rand
	index  map[string]int   // port code -> position in ports; only looked up, never iterated
	byArea map[string][]int // area -> positions in ports
	used   map[[2]int]bool  // origin and destination positions of the routes so far
	routes []route
}

func newRoutePicker(rng *rand.Rand) *routePicker {
	p := &routePicker{rng: rng, index: make(map[string]int, len(ports)), byArea: map[string][]int{}, used: map[[2]int]bool{}}
	for i, port := range ports {
		p.index[port.Code] = i
		a := area(port.Region)
		p.byArea[a] = append(p.byArea[a], i)
	}
	return p
}

// add makes the route from ports[o] to ports[d] around the price base: a thin route (a price
// or two on most days) or one whose volume grows with the size of its ports.
func (p *routePicker) add(o, d int, base float64) {
	rng := p.rng
	p.used[[2]int{o, d}] = true
	prefix := append(appendCopyText(nil, ports[o].Code), '\t')
	prefix = append(appendCopyText(prefix, ports[d].Code), '\t')
	r := route{
		prefix: prefix,
		base:   base,
		drift:  0.004 * rng.NormFloat64(),
		level:  0.05 * rng.NormFloat64(),
	}
	if rng.Float64() < 0.15 { // a thin route: a price or two on most days, none on some
		r.volume = 0.08 + 0.22*rng.Float64()
		r.gap = 0.10 + 0.25*rng.Float64()
	} else {
		hub := math.Sqrt(float64(ports[o].Size*ports[d].Size)) / 10
		r.volume = min(max((0.5+hub)*math.Exp(0.4*rng.NormFloat64()), 0.25), 1.5)
		r.gap = 0.02 + 0.13*rng.Float64()
	}
	p.routes = append(p.routes, r)
}

// addOnLane adds the route from ports[o] to ports[d] at a price drawn from the range of its
// lane.
func (p *routePicker) addOnLane(o, d int) {
	l := laneOf(o, d)
	p.add(o, d, l.lo+(l.hi-l.lo)*p.rng.Float64())
}

// laneOf is the lane between the areas of ports[o] and ports[d], or a default one.
func laneOf(o, d int) lane {
	from, to := area(ports[o].Region), area(ports[d].Region)
	for _, l := range lanes {
		if l.from == from && l.to == to {
			return l
		}
	}
	return lane{from: from, to: to, lo: 600, hi: 1600}
}

// addBusy adds the busy routes, up to n, each with its fixed share of every day's prices.
func (p *routePicker) addBusy(n int) {
	for _, b := range busyRoutes[:min(len(busyRoutes), n)] {
		p.addOnLane(p.index[b.orig], p.index[b.dest])
		r := &p.routes[len(p.routes)-1]
		r.share, r.volume, r.gap = b.share, 0, 0
	}
}

// addByLane draws routes until there are n: a lane by its weight, then a port at either end by
// its size.
func (p *routePicker) addByLane(n int) {
	var laneTotal float64
	for _, l := range lanes {
		laneTotal += l.weight
	}
	for attempts := 0; len(p.routes) < n && attempts < 100*n; attempts++ {
		x := p.rng.Float64() * laneTotal
		l := lanes[len(lanes)-1]
		for _, c := range lanes {
			if x -= c.weight; x < 0 {
				l = c
				break
			}
		}
		o, d := p.pickPort(p.byArea[l.from]), p.pickPort(p.byArea[l.to])
		if o == d || p.used[[2]int{o, d}] {
			continue
		}
		p.add(o, d, l.lo+(l.hi-l.lo)*p.rng.Float64())
	}
}

// pickPort draws one of candidates, weighted by size.
func (p *routePicker) pickPort(candidates []int) int {
	total := 0
	for _, i := range candidates {
		total += ports[i].Size
	}
	x := p.rng.IntN(total)
	for _, i := range candidates {
		if x -= ports[i].Size; x < 0 {
			return i
		}
	}
	return candidates[len(candidates)-1]
}

// addInOrder fills up to n routes with the free pairs of ports in order: only needed when
// nearly every pair is a route already.
func (p *routePicker) addInOrder(n int) {
	for o := 0; o < len(ports) && len(p.routes) < n; o++ {
		for d := 0; d < len(ports) && len(p.routes) < n; d++ {
			if o != d && !p.used[[2]int{o, d}] {
				p.addOnLane(o, d)
			}
		}
	}
}

// splitDays shares total prices out over the days, fewer at weekends, exactly.
func splitDays(rng *rand.Rand, total int, start time.Time, days int) []int {
	weights := make([]float64, days)
	var sum float64
	for d := range weights {
		w := math.Exp(0.08 * rng.NormFloat64())
		switch start.AddDate(0, 0, d).Weekday() {
		case time.Saturday:
			w *= 0.6
		case time.Sunday:
			w *= 0.5
		}
		weights[d] = w
		sum += w
	}
	// Largest remainder: whole shares first, then one more to the days with the largest rest.
	out := make([]int, days)
	rest := make([]float64, days)
	left := total
	for d, w := range weights {
		exact := float64(total) * w / sum
		out[d] = int(exact)
		rest[d] = exact - float64(out[d])
		left -= out[d]
	}
	order := make([]int, days)
	for d := range order {
		order[d] = d
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rest[a] > rest[b]:
			return -1
		case rest[a] < rest[b]:
			return 1
		}
		return 0
	})
	for i := 0; left > 0; i = (i + 1) % days {
		out[order[i]]++
		left--
	}
	return out
}

// write streams the rows of prices, day by day, the routes of a day in a fixed order. Each
// day the routes' volumes are shaken and the day's total is drawn among them one price at a
// time, so the number of prices of a route varies from day to day, and is zero on some days.
func (g *priceGen) write(bw *bufio.Writer, st *Stats) error {
	rng := g.rng
	n := len(g.routes)
	cum := make([]float64, n)
	counts := make([]int, n)
	var busyShare float64
	for _, r := range g.routes {
		busyShare += r.share
	}
	var row []byte
	for day, date := range g.days {
		// The day's weight of each route.
		var sum float64
		for i := range g.routes {
			r := &g.routes[i]
			r.level = 0.98*r.level + r.drift + 0.012*rng.NormFloat64()
			w := 0.0
			if r.volume > 0 && rng.Float64() >= r.gap {
				w = r.volume * math.Exp(0.3*rng.NormFloat64())
			}
			cum[i] = w
			sum += w
		}
		if sum == 0 { // every ordinary route rests today: share the day evenly
			for i := range cum {
				cum[i] = 1
			}
			sum = float64(n)
		}
		acc := 0.0
		for i, r := range g.routes {
			if r.share > 0 {
				cum[i] = sum * r.share / (1 - busyShare)
			}
			acc += cum[i]
			cum[i] = acc
			counts[i] = 0
		}
		for range g.totals[day] {
			counts[search(cum, rng.Float64()*acc)]++
		}

		for i := range g.routes {
			r := &g.routes[i]
			c := counts[i]
			switch {
			case c == 0:
				st.RouteDaysEmpty++
			case c < 3:
				st.RouteDaysSparse++
			}
			st.MaxRouteDay = max(st.MaxRouteDay, c)
			level := r.base * math.Exp(r.level)
			for range c {
				p := level * (1 + 0.05*rng.NormFloat64())
				if rng.Float64() < outlierRate {
					if rng.IntN(2) == 0 {
						p *= 0.3 + 0.2*rng.Float64()
					} else {
						p *= 1.8 + 1.2*rng.Float64()
					}
				}
				row = append(row[:0], r.prefix...)
				row = append(row, date...)
				row = append(row, '\t')
				row = strconv.AppendInt(row, max(int64(math.Round(p)), 1), 10)
				row = append(row, '\n')
				if _, err := bw.Write(row); err != nil {
					return err
				}
			}
			st.Prices += int64(c)
		}
	}
	st.Routes = n
	st.RouteDays = n * len(g.days)
	return nil
}

// search returns the first i with cum[i] > x; x must be below the last element.
func search(cum []float64, x float64) int {
	lo, hi := 0, len(cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
