package store

import "slices"

// Tree is the port and region tree of one tree generation, to resolve codes without a round
// trip. It is immutable once built.
type Tree struct {
	gen     Generation
	ports   map[string]bool
	regions map[string][]string // slug → every port in the region and the regions below it
}

func newTree(gen Generation, ports, portParents, slugs []string, regionParents []*string) *Tree {
	t := &Tree{gen: gen, ports: make(map[string]bool, len(ports)), regions: make(map[string][]string, len(slugs))}
	direct := map[string][]string{}
	for i, code := range ports {
		t.ports[code] = true
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
		t.regions[slug] = codes
	}
	return t
}

// EachRegion calls fn with every region slug and all the ports in it and below it. fn must not
// modify ports.
func (t *Tree) EachRegion(fn func(slug string, ports []string)) {
	for slug, ports := range t.regions {
		fn(slug, ports)
	}
}

// Generation is the generation the tree was read at.
func (t *Tree) Generation() Generation { return t.gen }

// Resolve resolves a code as resolveSQL does: a port code in any case first, then a region
// slug exactly as given. ok is false when the answer depends on the database's upper case (a
// code that is not ASCII); the caller then asks the database (Store.Resolve).
func (t *Tree) Resolve(code string) (loc Location, ok bool) {
	up := make([]byte, len(code))
	for i := range len(code) {
		c := code[i]
		if c >= 0x80 {
			return Location{}, false
		}
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	if port := string(up); t.ports[port] {
		return Location{Ports: []string{port}, Found: true, Key: "p:" + port}, true
	}
	if codes, found := t.regions[code]; found {
		return Location{Ports: codes, Found: true, Key: "r:" + code}, true
	}
	return Location{}, true
}
