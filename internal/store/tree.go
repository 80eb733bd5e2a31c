package store

import "slices"

// Tree is the port and region tree of one tree generation, to resolve codes without a round
// trip. It is immutable once built.
// Each code's Location is built once, so that resolving allocates nothing.
type Tree struct {
	gen     Generation
	ports   map[string]Location
	regions map[string]Location // Ports: every port in the region and the regions below it
}

func newTree(gen Generation, ports, portParents, slugs []string, regionParents []*string) *Tree {
	t := &Tree{gen: gen, ports: make(map[string]Location, len(ports)), regions: make(map[string]Location, len(slugs))}
	direct := map[string][]string{}
	for i, code := range ports {
		t.ports[code] = Location{Ports: []string{code}, Found: true, Key: "p:" + code}
		direct[portParents[i]] = append(direct[portParents[i]], code)
	}
	children := map[string][]string{}
	for i, slug := range slugs {
		if p := regionParents[i]; p != nil {
			children[*p] = append(children[*p], slug)
		}
	}
	for _, slug := range slugs {
		// A walk with a visited set, as UNION ends the recursive query's walk on a cycle.
		seen := map[string]bool{slug: true}
		queue := []string{slug}
		var codes []string
		for len(queue) > 0 {
			r := queue[0]
			queue = queue[1:]
			codes = append(codes, direct[r]...)
			for _, c := range children[r] {
				if !seen[c] {
					seen[c] = true
					queue = append(queue, c)
				}
			}
		}
		slices.Sort(codes)
		t.regions[slug] = Location{Ports: codes, Found: true, Key: "r:" + slug}
	}
	return t
}

// EachRegion calls fn with every region slug and all the ports in it and below it. fn must not
// modify ports.
func (t *Tree) EachRegion(fn func(slug string, ports []string)) {
	for slug, loc := range t.regions {
		fn(slug, loc.Ports)
	}
}

// Generation is the generation the tree was read at.
func (t *Tree) Generation() Generation { return t.gen }

// Resolve resolves a code as resolveSQL does: a port code in any case first, then a region
// slug exactly as given. ok is false when the answer depends on the database's upper case (a
// code that is not ASCII); the caller then asks the database (Store.Resolve). The Location is
// shared: callers must not modify its Ports.
func (t *Tree) Resolve(code string) (loc Location, ok bool) {
	var buf [64]byte
	up := buf[:0]
	if len(code) > len(buf) {
		up = make([]byte, 0, len(code))
	}
	for i := range len(code) {
		c := code[i]
		if c >= 0x80 {
			return Location{}, false
		}
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = append(up, c)
	}
	if loc, found := t.ports[string(up)]; found {
		return loc, true
	}
	if loc, found := t.regions[code]; found {
		return loc, true
	}
	return Location{}, true
}
