package gendump

// Region is one row of the regions table. Parent is "" for a root region (NULL in the dump).
type Region struct {
	Slug   string
	Name   string
	Parent string
}

// Port is one row of the ports table.
type Port struct {
	Code   string // UN/LOCODE style: country (2 letters) and location (3 letters)
	Name   string
	Region string // slug of the region the port belongs to, a leaf or an inner region
	// Size weighs how often the port takes part in a route (1 small feeder port, 10 main hub).
	Size int
}

// regions is the region tree, parents before their children: the order of the dump's rows.
// The world areas are the roots; China goes three levels deep; the Black Sea has no port.
var regions = []Region{
	{"asia", "Asia", ""},
	{"east_asia", "East Asia", "asia"},
	{"china", "China", "east_asia"},
	{"china_north", "North China", "china"},
	{"china_east", "East China", "china"},
	{"china_south", "South China", "china"},
	{"japan_korea", "Japan & Korea", "east_asia"},
	{"southeast_asia", "Southeast Asia", "asia"},
	{"south_asia", "Indian Subcontinent", "asia"},
	{"middle_east", "Middle East", "asia"},
	{"europe", "Europe", ""},
	{"north_continent", "North Continent", "europe"},
	{"uk_ireland", "UK & Ireland", "europe"},
	{"scandinavia_baltic", "Scandinavia & Baltic", "europe"},
	{"mediterranean", "Mediterranean", "europe"},
	{"west_med", "West Mediterranean", "mediterranean"},
	{"east_med", "East Mediterranean", "mediterranean"},
	{"black_sea", "Black Sea", "europe"},
	{"americas", "Americas", ""},
	{"north_america", "North America", "americas"},
	{"na_east_coast", "North America East Coast", "north_america"},
	{"na_gulf", "US Gulf Coast", "north_america"},
	{"na_west_coast", "North America West Coast", "north_america"},
	{"latin_america", "Latin America", "americas"},
	{"caribbean", "Central America & Caribbean", "latin_america"},
	{"sa_east_coast", "South America East Coast", "latin_america"},
	{"sa_west_coast", "South America West Coast", "latin_america"},
	{"africa", "Africa", ""},
	{"west_africa", "West Africa", "africa"},
	{"south_east_africa", "South & East Africa", "africa"},
	{"oceania", "Oceania", ""},
	{"australia", "Australia", "oceania"},
}

// ports lists the ports in the order of the dump's rows, grouped by region.
var ports = []Port{
	// Asia
	{"CNTSN", "Tianjin", "china_north", 6},
	{"CNTAO", "Qingdao", "china_north", 7},
	{"CNDLC", "Dalian", "china_north", 4},
	{"CNSHA", "Shanghai", "china_east", 10},
	{"CNNGB", "Ningbo", "china_east", 9},
	{"CNXMN", "Xiamen", "china_east", 5},
	{"CNFOC", "Fuzhou", "china_east", 2},
	{"CNYTN", "Yantian", "china_south", 8},
	{"CNSHK", "Shekou", "china_south", 5},
	{"CNNSA", "Nansha", "china_south", 5},
	{"HKHKG", "Hong Kong", "china_south", 7},
	{"CNWUH", "Wuhan", "china", 1},
	{"TWKHH", "Kaohsiung", "east_asia", 5},
	{"TWTXG", "Taichung", "east_asia", 2},
	{"JPTYO", "Tokyo", "japan_korea", 5},
	{"JPYOK", "Yokohama", "japan_korea", 4},
	{"JPNGO", "Nagoya", "japan_korea", 3},
	{"JPOSA", "Osaka", "japan_korea", 3},
	{"JPUKB", "Kobe", "japan_korea", 4},
	{"KRPUS", "Busan", "japan_korea", 8},
	{"KRINC", "Incheon", "japan_korea", 3},
	{"KRKAN", "Gwangyang", "japan_korea", 3},
	{"SGSIN", "Singapore", "southeast_asia", 9},
	{"MYPKG", "Port Klang", "southeast_asia", 6},
	{"MYTPP", "Tanjung Pelepas", "southeast_asia", 5},
	{"THLCH", "Laem Chabang", "southeast_asia", 5},
	{"VNSGN", "Ho Chi Minh City", "southeast_asia", 4},
	{"VNCMT", "Cai Mep", "southeast_asia", 4},
	{"VNHPH", "Haiphong", "southeast_asia", 4},
	{"IDJKT", "Jakarta", "southeast_asia", 4},
	{"IDSUB", "Surabaya", "southeast_asia", 2},
	{"PHMNL", "Manila", "southeast_asia", 3},
	{"INNSA", "Nhava Sheva", "south_asia", 6},
	{"INMUN", "Mundra", "south_asia", 6},
	{"INPAV", "Pipavav", "south_asia", 2},
	{"INMAA", "Chennai", "south_asia", 3},
	{"LKCMB", "Colombo", "south_asia", 5},
	{"PKKHI", "Karachi", "south_asia", 3},
	{"BDCGP", "Chittagong", "south_asia", 3},
	{"AEJEA", "Jebel Ali", "middle_east", 7},
	{"OMSLL", "Salalah", "middle_east", 3},
	{"SAJED", "Jeddah", "middle_east", 4},
	{"SADMM", "Dammam", "middle_east", 3},
	{"QAHMD", "Hamad", "middle_east", 2},

	// Europe
	{"NLRTM", "Rotterdam", "north_continent", 10},
	{"NLAMS", "Amsterdam", "north_continent", 2},
	{"BEANR", "Antwerpen", "north_continent", 8},
	{"DEHAM", "Hamburg", "north_continent", 8},
	{"DEBRV", "Bremerhaven", "north_continent", 6},
	{"DEWVN", "Wilhelmshaven", "north_continent", 2},
	{"FRLEH", "Le Havre", "north_continent", 5},
	{"FRDKK", "Dunkerque", "north_continent", 2},
	{"GBFXT", "Felixstowe", "uk_ireland", 6},
	{"GBSOU", "Southampton", "uk_ireland", 4},
	{"GBLGP", "London Gateway", "uk_ireland", 4},
	{"GBLIV", "Liverpool", "uk_ireland", 2},
	{"IEDUB", "Dublin", "uk_ireland", 2},
	{"SEGOT", "Göteborg", "scandinavia_baltic", 4},
	{"DKAAR", "Århus", "scandinavia_baltic", 3},
	{"NOOSL", "Oslo", "scandinavia_baltic", 2},
	{"FIHEL", "Helsinki", "scandinavia_baltic", 2},
	{"PLGDN", "Gdańsk", "scandinavia_baltic", 4},
	{"LTKLJ", "Klaipėda", "scandinavia_baltic", 2},
	{"EETLL", "Tallinn", "scandinavia_baltic", 1},
	{"PTSIE", "Sines", "europe", 3},
	{"PTLEI", "Leixões", "europe", 2},
	{"ESBIO", "Bilbao", "europe", 2},
	{"ESVLC", "Valencia", "west_med", 6},
	{"ESBCN", "Barcelona", "west_med", 5},
	{"ESALG", "Algeciras", "west_med", 5},
	{"FRFOS", "Fos-sur-Mer", "west_med", 4},
	{"ITGOA", "Genova", "west_med", 5},
	{"ITSPE", "La Spezia", "west_med", 4},
	{"ITGIT", "Gioia Tauro", "west_med", 3},
	{"MTMAR", "Marsaxlokk", "west_med", 3},
	{"GRPIR", "Piraeus", "east_med", 6},
	{"GRSKG", "Thessaloniki", "east_med", 2},
	{"TRMER", "Mersin", "east_med", 4},
	{"TRIZM", "İzmir", "east_med", 3},
	{"TRAMR", "Ambarli", "east_med", 4},
	{"EGPSD", "Port Said", "east_med", 4},
	{"ILHFA", "Haifa", "east_med", 3},
	{"SIKOP", "Koper", "east_med", 3},
	{"ITTRS", "Trieste", "east_med", 3},
	{"HRRJK", "Rijeka", "east_med", 2},
	{"CYLMS", "Limassol", "east_med", 1},
	{"ITNAP", "Napoli", "mediterranean", 2},

	// Americas
	{"USNYC", "New York", "na_east_coast", 7},
	{"USORF", "Norfolk", "na_east_coast", 5},
	{"USSAV", "Savannah", "na_east_coast", 6},
	{"USCHS", "Charleston", "na_east_coast", 4},
	{"USBAL", "Baltimore", "na_east_coast", 3},
	{"USMIA", "Miami", "na_east_coast", 3},
	{"CAHAL", "Halifax", "na_east_coast", 2},
	{"CAMTR", "Montréal", "na_east_coast", 3},
	{"USHOU", "Houston", "na_gulf", 5},
	{"USMSY", "New Orleans", "na_gulf", 3},
	{"USMOB", "Mobile", "na_gulf", 2},
	{"USLAX", "Los Angeles", "na_west_coast", 9},
	{"USLGB", "Long Beach", "na_west_coast", 8},
	{"USOAK", "Oakland", "na_west_coast", 4},
	{"USSEA", "Seattle", "na_west_coast", 4},
	{"USTIW", "Tacoma", "na_west_coast", 3},
	{"CAVAN", "Vancouver", "na_west_coast", 5},
	{"CAPRR", "Prince Rupert", "na_west_coast", 2},
	{"MXZLO", "Manzanillo", "latin_america", 4},
	{"MXLZC", "Lázaro Cárdenas", "latin_america", 3},
	{"MXVER", "Veracruz", "latin_america", 2},
	{"PAMIT", "Manzanillo", "caribbean", 4},
	{"PABLB", "Balboa", "caribbean", 4},
	{"JMKIN", "Kingston", "caribbean", 3},
	{"DOCAU", "Caucedo", "caribbean", 2},
	{"COCTG", "Cartagena", "caribbean", 4},
	{"GTSTC", "Santo Tomás de Castilla", "caribbean", 1},
	{"BRSSZ", "Santos", "sa_east_coast", 6},
	{"BRRIG", "Rio Grande", "sa_east_coast", 2},
	{"BRPNG", "Paranaguá", "sa_east_coast", 3},
	{"BRITJ", "Itajaí", "sa_east_coast", 3},
	{"BRSFS", "São Francisco do Sul", "sa_east_coast", 2},
	{"ARBUE", "Buenos Aires", "sa_east_coast", 3},
	{"UYMVD", "Montevideo", "sa_east_coast", 2},
	{"CLSAI", "San Antonio", "sa_west_coast", 3},
	{"CLVAP", "Valparaíso", "sa_west_coast", 2},
	{"PECLL", "Callao", "sa_west_coast", 4},
	{"ECGYE", "Guayaquil", "sa_west_coast", 3},
	{"COBUN", "Buenaventura", "sa_west_coast", 2},

	// Africa
	{"MAPTM", "Tanger Med", "africa", 5},
	{"MACAS", "Casablanca", "africa", 2},
	{"DZALG", "Alger", "africa", 1},
	{"NGLOS", "Lagos", "west_africa", 4},
	{"GHTEM", "Tema", "west_africa", 3},
	{"CIABJ", "Abidjan", "west_africa", 3},
	{"SNDKR", "Dakar", "west_africa", 2},
	{"TGLFW", "Lomé", "west_africa", 3},
	{"CMDLA", "Douala", "west_africa", 2},
	{"AOLAD", "Luanda", "west_africa", 2},
	{"ZADUR", "Durban", "south_east_africa", 4},
	{"ZACPT", "Cape Town", "south_east_africa", 3},
	{"KEMBA", "Mombasa", "south_east_africa", 3},
	{"TZDAR", "Dar es Salaam", "south_east_africa", 2},
	{"MZMPM", "Maputo", "south_east_africa", 1},
	{"DJJIB", "Djibouti", "south_east_africa", 2},

	// Oceania
	{"AUSYD", "Sydney", "australia", 4},
	{"AUMEL", "Melbourne", "australia", 5},
	{"AUBNE", "Brisbane", "australia", 3},
	{"AUFRE", "Fremantle", "australia", 2},
	{"AUADL", "Adelaide", "australia", 1},
	{"NZAKL", "Auckland", "oceania", 3},
	{"NZTRG", "Tauranga", "oceania", 2},
	{"FJSUV", "Suva", "oceania", 1},
}

// Geography returns the regions and ports every dump holds, in the order of their rows. The
// geography is fixed; the seed only varies the routes and prices. The slices are copies.
func Geography() ([]Region, []Port) {
	return append([]Region(nil), regions...), append([]Port(nil), ports...)
}

// area is the root of a region: the world area a port belongs to.
func area(slug string) string {
	for range regions { // a walk up the tree visits each region at most once
		parent := ""
		for _, r := range regions {
			if r.Slug == slug {
				parent = r.Parent
				break
			}
		}
		if parent == "" {
			break
		}
		slug = parent
	}
	return slug
}
