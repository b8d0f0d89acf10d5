//! The generators of the city-operations layers, one function per layer, drawing from the
//! [`super::City`] built from the real extract.

use super::*;

// ---------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------

/// Footprints of ~4% of the real buildings, with a permit each.
pub(super) fn construction_permits(city: &City, rng: &mut Rng) -> Vec<Feature> {
    #[rustfmt::skip]
    const APPLICANTS: &[&str] = &[
        "As Oy Helsingin Kivitalo", "Kiinteistö Oy Esplanadi", "SRV Rakennus Oy", "YIT Suomi Oy",
        "Helsingin kaupunki", "Senaatti-kiinteistöt", "Skanska Talonrakennus Oy", "Private owner",
    ];
    let mut out = Vec::new();
    for (i, building) in city.buildings.iter().enumerate() {
        // Always one permit, even from a tiny extract, so the layer is never empty.
        let last_chance = out.is_empty() && i + 1 == city.buildings.len();
        if !rng.chance(0.04) && !last_chance {
            continue;
        }
        let status = rng.weighted(&[
            ("submitted", 20),
            ("approved", 30),
            ("rejected", 8),
            ("under_construction", 25),
            ("completed", 17),
        ]);
        let kind = rng.weighted(&[
            ("renovation", 45),
            ("extension", 20),
            ("new_building", 20),
            ("demolition", 15),
        ]);
        let valid_from = day_2026(rng);
        let valid_to = valid_from + rng.range_i64(30, 720) * DAY;
        let tag = |k: &str| building.properties.get(k).and_then(Value::as_str);
        let address = match (tag("addr:street"), tag("addr:housenumber")) {
            (Some(street), Some(number)) => text(format!("{street} {number}")),
            _ => Value::Null,
        };
        let properties = props([
            ("permit_no", text(format!("HEL-2026-{:05}", out.len() + 1))),
            ("status", text(*status)),
            ("kind", text(*kind)),
            ("valid_from", text(format_rfc3339(valid_from))),
            ("valid_to", text(format_rfc3339(valid_to))),
            ("applicant", text(*rng.pick(APPLICANTS))),
            ("address", address),
            (
                "building_osm_id",
                building
                    .properties
                    .get("osm_id")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
        ]);
        out.push(Feature {
            geometry: building.geometry.clone(),
            properties,
        });
    }
    out
}

/// ~60 planned footprints: rectangles beside real roads, aligned with them, kept clear of
/// roads, existing buildings and each other where the extract leaves room.
pub(super) fn designed_buildings(city: &City, rng: &mut Rng) -> Vec<Feature> {
    const TARGET: usize = 60;
    #[rustfmt::skip]
    const DISTRICTS: &[&str] = &[
        "Kamppi", "Punavuori", "Kaartinkaupunki", "Kruununhaka", "Katajanokka", "Ullanlinna",
        "Kluuvi", "Etu-Töölö", "Jätkäsaari", "Eira",
    ];
    #[rustfmt::skip]
    const KINDS: &[&str] = &[
        "Block", "Residences", "Courtyard", "Office Park", "Tower", "Commons", "Quarter",
    ];
    #[rustfmt::skip]
    const ARCHITECTS: &[&str] = &[
        "ALA Architects", "JKMM", "Lahdelma & Mahlamäki", "PES-Architects", "Arkkitehdit NRT",
        "Helin & Co",
    ];

    let obstacle = |g: &Geometry<f64>| g.bounding_rect().map(|r| (r, g.clone()));
    let roads: Vec<(Rect<f64>, Geometry<f64>)> = city
        .roads
        .iter()
        .filter_map(|r| obstacle(&LineString::new(r.coords.clone()).into()))
        .collect();
    let buildings: Vec<(Rect<f64>, Geometry<f64>)> = city
        .buildings
        .iter()
        .filter_map(|b| obstacle(&b.geometry))
        .collect();
    let hits = |set: &[(Rect<f64>, Geometry<f64>)], p: &Polygon<f64>, r: &Rect<f64>| {
        set.iter()
            .any(|(bbox, g)| bbox.intersects(r) && g.intersects(p))
    };

    let mut placed: Vec<(Rect<f64>, Geometry<f64>)> = Vec::new();
    let mut out = Vec::new();
    // A dense centre may have no free lot beside a road; after many tries a design may
    // replace existing buildings (redevelopment), but never cover a road or another design.
    let (max_attempts, strict_attempts) = (40 * TARGET, 25 * TARGET);
    for attempt in 0..max_attempts {
        if out.len() == TARGET || city.drivable.segments.is_empty() {
            break;
        }
        let seg = city.drivable.sample(rng);
        // Next to a junction's stub segments the road direction is meaningless.
        if seg.length_m < 10.0 {
            continue;
        }
        let (u, n) = frame(seg.a, seg.b);
        let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
        let (width, depth, gap) = (
            rng.range_f64(12.0, 40.0),
            rng.range_f64(12.0, 40.0),
            rng.range_f64(15.0, 30.0),
        );
        let base = lerp(seg.a, seg.b, rng.f64());
        let corner = |along: f64, away: f64| {
            offset(
                base,
                u.0 * along + n.0 * side * away,
                u.1 * along + n.1 * side * away,
            )
        };
        let ring: Vec<Coord<f64>> = [
            corner(-width / 2.0, gap),
            corner(width / 2.0, gap),
            corner(width / 2.0, gap + depth),
            corner(-width / 2.0, gap + depth),
            corner(-width / 2.0, gap),
        ]
        .into_iter()
        .map(rounded)
        .collect();
        let polygon = Polygon::new(LineString::new(ring), vec![]).orient(Direction::Default);
        let rect = polygon
            .bounding_rect()
            .expect("a rectangle has a bounding box");
        if hits(&roads, &polygon, &rect)
            || hits(&placed, &polygon, &rect)
            || (attempt < strict_attempts && hits(&buildings, &polygon, &rect))
        {
            continue;
        }
        let levels = rng.range_i64(2, 12);
        let status = rng.weighted(&[
            ("proposed", 35),
            ("approved", 25),
            ("in_design", 30),
            ("rejected", 10),
        ]);
        let usage = rng.weighted(&[
            ("residential", 50),
            ("office", 20),
            ("mixed_use", 22),
            ("public", 8),
        ]);
        let project = format!(
            "{} {} {}",
            rng.pick(DISTRICTS),
            rng.pick(KINDS),
            rng.range_i64(1, 40)
        );
        let properties = props([
            ("project", text(project)),
            ("status", text(*status)),
            ("levels", json!(levels)),
            ("height", json!((levels as f64 * 3.2 * 10.0).round() / 10.0)),
            ("use", text(*usage)),
            ("architect", text(*rng.pick(ARCHITECTS))),
            (
                "submitted_at",
                text(format_rfc3339(time_2026(rng, &OFFICE_HOURS))),
            ),
        ]);
        placed.push((rect, polygon.clone().into()));
        out.push(Feature {
            geometry: polygon.into(),
            properties,
        });
    }
    out
}

/// Office hours, for submissions and meetings.
const OFFICE_HOURS: [u32; 24] = [
    0, 0, 0, 0, 0, 0, 0, 1, 4, 6, 6, 5, 3, 5, 6, 5, 3, 1, 0, 0, 0, 0, 0, 0,
];

/// ~400 points on real drivable roads, more on busy classes and at rush hours.
pub(super) fn accidents(city: &City, rng: &mut Rng) -> Vec<Feature> {
    let mut out = Vec::new();
    if city.traffic.segments.is_empty() {
        return out;
    }
    for _ in 0..400 {
        let seg = city.traffic.sample(rng);
        let road = &city.roads[seg.road];
        let at = rounded(lerp(seg.a, seg.b, rng.f64()));
        let kind = *rng.weighted(&[
            ("collision", 55),
            ("pedestrian", 15),
            ("cyclist", 15),
            ("single_vehicle", 15),
        ]);
        let vehicles = if kind == "collision" {
            *rng.weighted(&[(2, 80), (3, 15), (4, 5)])
        } else {
            1
        };
        let severity = rng.weighted(&[("minor", 80), ("serious", 18), ("fatal", 2)]);
        let properties = props([
            (
                "occurred_at",
                text(format_rfc3339(time_2026(rng, &TRAFFIC_HOURS))),
            ),
            ("severity", text(*severity)),
            ("vehicles", json!(vehicles)),
            ("kind", text(kind)),
            ("road", opt_text(&road.name)),
            ("highway", text(road.highway.clone())),
        ]);
        out.push(Feature {
            geometry: point(at),
            properties,
        });
    }
    out
}

/// Free-flow speed of a road: its maxspeed when numeric, else a typical urban value.
fn free_flow_kmh(road: &Road) -> f64 {
    match road.properties.get("maxspeed") {
        Some(Value::Number(n)) => n.as_f64().filter(|v| *v >= 5.0).unwrap_or(40.0),
        _ => match road.highway.trim_end_matches("_link") {
            "motorway" => 100.0,
            "trunk" => 70.0,
            "primary" | "secondary" => 50.0,
            "tertiary" | "unclassified" => 40.0,
            "residential" => 30.0,
            _ => 20.0,
        },
    }
}

/// ~120 contiguous stretches of busy real roads with their speed and delay.
pub(super) fn traffic_jams(city: &City, rng: &mut Rng) -> Vec<Feature> {
    let mut out = Vec::new();
    if city.traffic.segments.is_empty() {
        return out;
    }
    for _ in 0..120 {
        let seg = city.traffic.sample(rng);
        let road = &city.roads[seg.road];
        // Walk forward along the way from the sampled segment until the jam is long enough.
        let target_m = rng.range_f64(120.0, 900.0);
        let mut coords = vec![road.coords[seg.index]];
        let mut length_m = 0.0;
        for next in &road.coords[seg.index + 1..] {
            length_m += distance_m(coords[coords.len() - 1], *next);
            coords.push(*next);
            if length_m >= target_m {
                break;
            }
        }
        let level = *rng.weighted(&[(1i64, 25), (2, 30), (3, 25), (4, 13), (5, 7)]);
        let (lo, hi) = [
            (0.55, 0.75),
            (0.4, 0.55),
            (0.25, 0.4),
            (0.12, 0.25),
            (0.04, 0.12),
        ][level as usize - 1];
        let free = free_flow_kmh(road);
        let speed = (free * rng.range_f64(lo, hi)).round().max(2.0);
        let delay_s = (length_m / (speed / 3.6) - length_m / (free / 3.6))
            .round()
            .max(0.0);
        let detected = time_2026(rng, &TRAFFIC_HOURS);
        // Some jams are still ongoing: no clearing time yet.
        let cleared = if rng.chance(0.12) {
            Value::Null
        } else {
            text(format_rfc3339(
                detected + rng.range_i64(8, 40 + 25 * level) * 60,
            ))
        };
        let properties = props([
            ("speed_kmh", json!(speed as i64)),
            ("free_flow_kmh", json!(free.round() as i64)),
            ("delay_s", json!(delay_s as i64)),
            ("length_m", json!(length_m.round() as i64)),
            ("level", json!(level)),
            ("detected_at", text(format_rfc3339(detected))),
            ("cleared_at", cleared),
            ("road", opt_text(&road.name)),
            ("highway", text(road.highway.clone())),
        ]);
        out.push(Feature {
            geometry: Geometry::LineString(LineString::new(coords)),
            properties,
        });
    }
    out
}

/// What a kind of public event looks like: name templates ("{}" is the venue or street),
/// start hours, duration in minutes and expected attendance.
struct EventKind {
    category: &'static str,
    weight: u32,
    names: [&'static str; 3],
    start_hours: (i64, i64),
    minutes: (i64, i64),
    attendance: (i64, i64),
}

#[rustfmt::skip]
const EVENT_KINDS: &[EventKind] = &[
    EventKind { category: "concert", weight: 20, names: ["{} Summer Concert", "Jazz at {}", "Open-Air Concert: {}"],
        start_hours: (17, 20), minutes: (60, 240), attendance: (200, 5000) },
    EventKind { category: "market", weight: 20, names: ["{} Flea Market", "Farmers' Market at {}", "{} Christmas Market"],
        start_hours: (8, 11), minutes: (240, 4320), attendance: (100, 3000) },
    EventKind { category: "sport", weight: 15, names: ["{} Fun Run", "Street Basketball Cup", "Outdoor Yoga at {}"],
        start_hours: (8, 17), minutes: (60, 360), attendance: (30, 1500) },
    EventKind { category: "festival", weight: 12, names: ["{} Food Festival", "Light Festival: {}", "{} Street Art Festival"],
        start_hours: (10, 16), minutes: (1440, 7200), attendance: (1000, 20000) },
    EventKind { category: "exhibition", weight: 15, names: ["Outdoor Photo Exhibition at {}", "Design Week Pop-up", "Sculpture Walk: {}"],
        start_hours: (9, 12), minutes: (360, 7200), attendance: (100, 2000) },
    EventKind { category: "meeting", weight: 18, names: ["Residents' Meeting: {}", "City Planning Workshop", "{} Clean-up Day"],
        start_hours: (9, 18), minutes: (60, 180), attendance: (10, 150) },
];

/// ~150 events, mostly in parks and squares, some along streets.
pub(super) fn public_events(city: &City, rng: &mut Rng) -> Vec<Feature> {
    #[rustfmt::skip]
    const ORGANIZERS: &[&str] = &[
        "City of Helsinki Culture Division", "Helsinki Events Foundation", "Helsinki Marketing",
        "Kaartinkaupunki Residents' Association", "Helsinki City Museum", "HSL",
        "Töölö Sports Club", "Helsinki Music Centre", "Design Forum Finland",
    ];
    let mut out = Vec::new();
    for _ in 0..150 {
        let (at, place) = if !city.venues.is_empty() && rng.chance(0.78) {
            let venue = rng.pick(&city.venues);
            let (r, angle) = (
                rng.range_f64(0.0, 35.0),
                rng.range_f64(0.0, std::f64::consts::TAU),
            );
            (
                offset(venue.at, r * angle.cos(), r * angle.sin()),
                venue.name.clone(),
            )
        } else if !city.streets.segments.is_empty() {
            let seg = city.streets.sample(rng);
            (
                lerp(seg.a, seg.b, rng.f64()),
                city.roads[seg.road].name.clone(),
            )
        } else {
            break;
        };
        let place_name = place.clone().unwrap_or_else(|| "Helsinki".to_owned());
        let weights: Vec<(&EventKind, u32)> = EVENT_KINDS.iter().map(|k| (k, k.weight)).collect();
        let kind = *rng.weighted(&weights);
        let name = rng.pick(&kind.names).replace("{}", &place_name);
        let start = day_2026(rng)
            + rng.range_i64(kind.start_hours.0, kind.start_hours.1) * HOUR
            + 30 * 60 * rng.range_i64(0, 1);
        // Whole quarter hours, between 1 hour and 5 days.
        let end = start + rng.range_i64(kind.minutes.0 / 15, kind.minutes.1 / 15) * 15 * 60;
        let attendance = rng.range_i64(kind.attendance.0 / 10, kind.attendance.1 / 10) * 10;
        let properties = props([
            ("name", text(name)),
            ("category", text(kind.category)),
            ("start", text(format_rfc3339(start))),
            ("end", text(format_rfc3339(end))),
            ("organizer", text(*rng.pick(ORGANIZERS))),
            ("venue", opt_text(&place)),
            ("expected_attendance", json!(attendance)),
        ]);
        out.push(Feature {
            geometry: point(rounded(at)),
            properties,
        });
    }
    out
}

/// Three zones scaled to the extent: a central one over its middle half with an exempt
/// hole, an outer ring around it, and a small local zone in the busiest corner.
pub(super) fn toll_zones(city: &City, rng: &mut Rng) -> Vec<Feature> {
    let e = city.extent;
    let (cx, cy) = ((e.west + e.east) / 2.0, (e.south + e.north) / 2.0);
    let (hw, hh) = ((e.east - e.west) / 2.0, (e.north - e.south) / 2.0);
    if hw <= 0.0 || hh <= 0.0 {
        // No area to scale the zones to (an empty or one-node extract).
        return Vec::new();
    }
    // Rings are drawn in coordinates normalised to the extent (-1..1 each way): a radius of
    // 0.5 spans the middle half. Radii vary per vertex, but every ring stays star-shaped
    // around its centre, so it never self-intersects.
    let ring = |rng: &mut Rng, u0: f64, v0: f64, radius: f64| -> LineString<f64> {
        let n = 32;
        let mut coords: Vec<Coord<f64>> = (0..n)
            .map(|i| {
                let angle = std::f64::consts::TAU * i as f64 / n as f64;
                let r = radius * rng.range_f64(0.94, 1.06);
                rounded(Coord {
                    x: cx + (u0 + r * angle.cos()) * hw,
                    y: cy + (v0 + r * angle.sin()) * hh,
                })
            })
            .collect();
        coords.push(coords[0]);
        LineString::new(coords)
    };
    let central = ring(rng, 0.0, 0.0, 0.5);
    // The exempt hole stays well inside: offset <= 0.12 plus radius <= 0.13 < 0.47.
    let (hu, hv) = (rng.range_f64(-0.12, 0.12), rng.range_f64(-0.12, 0.12));
    let exempt = ring(rng, hu, hv, 0.11);
    let outer = ring(rng, 0.0, 0.0, 0.88);

    // The corner with most road vertices gets the local zone; at (±0.85, ±0.85) with
    // radius 0.1 it is > 1.09 from the centre, clear of the outer ring (< 0.94).
    let corners = [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)];
    let density = |(su, sv): (f64, f64)| {
        city.roads
            .iter()
            .flat_map(|r| &r.coords)
            .filter(|c| (c.x - cx) / hw * su > 0.6 && (c.y - cy) / hh * sv > 0.6)
            .count()
    };
    let (su, sv) = corners
        .into_iter()
        .rev()
        .max_by_key(|&c| density(c))
        .expect("four corners");
    let local = ring(rng, 0.85 * su, 0.85 * sv, 0.1);

    let zone =
        |exterior: LineString<f64>, holes: Vec<LineString<f64>>, properties: Properties| Feature {
            geometry: Polygon::new(exterior, holes)
                .orient(Direction::Default)
                .into(),
            properties,
        };
    vec![
        zone(
            central.clone(),
            vec![exempt],
            props([
                ("name", text("Keskusta congestion zone")),
                ("zone", text("central")),
                ("fee_eur", json!(6.0)),
                ("hours", text("Mo-Fr 07:00-19:00")),
                ("exempt_areas", json!(1)),
                ("valid_from", text("2026-03-01T00:00:00Z")),
            ]),
        ),
        zone(
            outer,
            vec![central],
            props([
                ("name", text("Inner city ring zone")),
                ("zone", text("outer_ring")),
                ("fee_eur", json!(3.0)),
                ("hours", text("Mo-Fr 07:00-09:00,15:00-18:00")),
                ("exempt_areas", json!(0)),
                ("valid_from", text("2026-03-01T00:00:00Z")),
            ]),
        ),
        zone(
            local,
            vec![],
            props([
                ("name", text("Local access zone")),
                ("zone", text("local")),
                ("fee_eur", json!(2.5)),
                ("hours", text("Mo-Su 06:00-22:00")),
                ("exempt_areas", json!(0)),
                ("valid_from", text("2026-06-01T00:00:00Z")),
            ]),
        ),
    ]
}

/// ~500 citizens' reports on real streets and paths, less than 5 m off the centre line.
pub(super) fn urban_problems(city: &City, rng: &mut Rng) -> Vec<Feature> {
    #[rustfmt::skip]
    const CATEGORIES: &[(&str, u32, [&str; 3])] = &[
        ("pothole", 20, ["Deep pothole in the driving lane", "Pothole near the crossing", "Asphalt broken after winter"]),
        ("streetlight", 15, ["Street light out", "Light flickering all night", "Lamp post leaning"]),
        ("graffiti", 12, ["Graffiti on the wall", "Tags on the bus shelter", "Offensive graffiti on a fence"]),
        ("litter", 18, ["Overflowing rubbish bin", "Litter along the street", "Illegally dumped furniture"]),
        ("sidewalk", 10, ["Uneven paving stones", "Icy pavement not gritted", "Kerb stone loose"]),
        ("traffic_sign", 8, ["Stop sign knocked over", "Sign hidden by branches", "Missing speed limit sign"]),
        ("tree", 9, ["Fallen branch on the path", "Tree damaged by a car", "Roots lifting the pavement"]),
        ("other", 8, ["Abandoned bicycle", "Blocked drain", "Noise from construction site"]),
    ];
    let categories: Vec<(usize, u32)> = CATEGORIES
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.1))
        .collect();
    let mut out = Vec::new();
    if city.streets.segments.is_empty() {
        return out;
    }
    for n in 0..500 {
        let seg = city.streets.sample(rng);
        let (_, normal) = frame(seg.a, seg.b);
        let base = lerp(seg.a, seg.b, rng.f64());
        let off = rng.range_f64(-4.5, 4.5);
        let at = rounded(offset(base, normal.0 * off, normal.1 * off));
        let (category, _, descriptions) = CATEGORIES[*rng.weighted(&categories)];
        let status = *rng.weighted(&[("reported", 35), ("in_progress", 25), ("resolved", 40)]);
        let reported = time_2026(rng, &DAYTIME_HOURS);
        let resolved = if status == "resolved" {
            text(format_rfc3339(reported + rng.range_i64(2, 30 * 24) * HOUR))
        } else {
            Value::Null
        };
        let properties = props([
            ("ticket_no", text(format!("UP-2026-{:05}", n + 1))),
            ("category", text(category)),
            ("status", text(status)),
            ("reported_at", text(format_rfc3339(reported))),
            ("resolved_at", resolved),
            ("description", text(*rng.pick(&descriptions))),
            ("street", opt_text(&city.roads[seg.road].name)),
        ]);
        out.push(Feature {
            geometry: point(at),
            properties,
        });
    }
    out
}

/// Waking hours, for citizens' reports.
const DAYTIME_HOURS: [u32; 24] = [
    0, 0, 0, 0, 0, 1, 2, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5, 4, 3, 2, 1,
];

/// Every real road with a few of its tags and a generated traffic load.
pub(super) fn roads(city: &City, rng: &mut Rng) -> Vec<Feature> {
    const KEEP: &[&str] = &[
        "name", "highway", "maxspeed", "lanes", "surface", "oneway", "osm_id",
    ];
    city.roads
        .iter()
        .map(|road| {
            let mut properties: Properties = KEEP
                .iter()
                .filter_map(|k| {
                    road.properties
                        .get(*k)
                        .map(|v| ((*k).to_owned(), v.clone()))
                })
                .collect();
            let (load, level) = road_load(road, rng);
            properties.insert("road_load".to_owned(), json!(load));
            properties.insert("road_load_level".to_owned(), text(level));
            Feature {
                geometry: Geometry::LineString(LineString::new(road.coords.clone())),
                properties,
            }
        })
        .collect()
}

/// Vehicles per hour and a level from how full the road is: capacity per lane and typical
/// utilisation by class, so main roads carry most and paths carry none.
fn road_load(road: &Road, rng: &mut Rng) -> (i64, &'static str) {
    let (per_lane, utilisation) = match road.highway.trim_end_matches("_link") {
        "motorway" => (1800.0, 0.75),
        "trunk" => (1500.0, 0.7),
        "primary" => (900.0, 0.7),
        "secondary" => (800.0, 0.6),
        "tertiary" => (700.0, 0.5),
        "unclassified" | "road" => (600.0, 0.3),
        "residential" => (500.0, 0.2),
        "living_street" => (300.0, 0.1),
        "service" => (400.0, 0.15),
        // footway, path, steps, pedestrian, cycleway and other non-motor ways.
        _ => return (0, "low"),
    };
    let oneway = road.properties.get("oneway").and_then(Value::as_str) == Some("yes");
    let lanes = match road.properties.get("lanes") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(2.0).clamp(1.0, 8.0),
        _ if oneway => 1.0,
        _ => 2.0,
    };
    let utilisation = (utilisation * rng.range_f64(0.5, 1.5)).clamp(0.02, 1.15);
    let load = ((per_lane * lanes * utilisation / 10.0).round() * 10.0).max(10.0) as i64;
    let level = match utilisation {
        u if u < 0.4 => "low",
        u if u < 0.7 => "medium",
        u if u < 0.9 => "high",
        _ => "severe",
    };
    (load, level)
}
