//! Map projections that planners' files come in, and their way back to WGS84 longitude and
//! latitude: transverse Mercator on an ellipsoid (national grids such as ETRS-TM35FIN,
//! EPSG:3067, and LKS94, EPSG:3346, and every UTM zone) and Web Mercator (EPSG:3857).
//! Pure maths, no I/O; which file uses which projection is [`super::crs`]'s question.
//!
//! Transverse Mercator uses Krüger's series to sixth order in the third flattening `n`, as
//! given by Karney, "Transverse Mercator with an accuracy of a few nanometers", J. Geodesy
//! 85 (2011), equations 35 (forward) and 36 (inverse). Within 4,000 km of the central
//! meridian its error is below a millimetre, far under the 1e-7 degree (about 1 cm) that
//! ingest promises; city data lies within a few hundred kilometres of it.

use geo::Coord;

/// An ellipsoid by its semi-major axis (metres) and flattening.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ellipsoid {
    pub a: f64,
    pub f: f64,
}

impl Ellipsoid {
    /// GRS 1980, the ellipsoid of ETRS89 and its national realisations (EUREF-FIN, LKS94).
    pub const GRS80: Ellipsoid = Ellipsoid {
        a: 6_378_137.0,
        f: 1.0 / 298.257_222_101,
    };
    /// WGS 84.
    pub const WGS84: Ellipsoid = Ellipsoid {
        a: 6_378_137.0,
        f: 1.0 / 298.257_223_563,
    };

    fn e2(&self) -> f64 {
        self.f * (2.0 - self.f)
    }
}

/// A transverse Mercator grid: its ellipsoid, natural origin (degrees), scale factor on
/// the central meridian, and false easting and northing (metres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransverseMercator {
    pub ellipsoid: Ellipsoid,
    pub lat0_deg: f64,
    pub lon0_deg: f64,
    pub k0: f64,
    pub false_easting: f64,
    pub false_northing: f64,
}

/// The series' constants for one ellipsoid: the rectifying radius `A` and the
/// coefficients alpha (forward) and beta (inverse), Karney (2011) eqs 14, 35 and 36.
struct Kruger {
    e: f64,
    big_a: f64,
    alpha: [f64; 6],
    beta: [f64; 6],
}

impl Kruger {
    fn new(el: Ellipsoid) -> Kruger {
        let n = el.f / (2.0 - el.f);
        let (n2, n3) = (n * n, n * n * n);
        let (n4, n5, n6) = (n3 * n, n3 * n2, n3 * n3);
        let big_a = el.a / (1.0 + n) * (1.0 + n2 / 4.0 + n4 / 64.0 + n6 / 256.0);
        let alpha = [
            n / 2.0 - 2.0 * n2 / 3.0 + 5.0 * n3 / 16.0 + 41.0 * n4 / 180.0 - 127.0 * n5 / 288.0
                + 7891.0 * n6 / 37800.0,
            13.0 * n2 / 48.0 - 3.0 * n3 / 5.0 + 557.0 * n4 / 1440.0 + 281.0 * n5 / 630.0
                - 1_983_433.0 * n6 / 1_935_360.0,
            61.0 * n3 / 240.0 - 103.0 * n4 / 140.0
                + 15061.0 * n5 / 26880.0
                + 167_603.0 * n6 / 181_440.0,
            49561.0 * n4 / 161_280.0 - 179.0 * n5 / 168.0 + 6_601_661.0 * n6 / 7_257_600.0,
            34729.0 * n5 / 80640.0 - 3_418_889.0 * n6 / 1_995_840.0,
            212_378_941.0 * n6 / 319_334_400.0,
        ];
        let beta = [
            n / 2.0 - 2.0 * n2 / 3.0 + 37.0 * n3 / 96.0 - n4 / 360.0 - 81.0 * n5 / 512.0
                + 96199.0 * n6 / 604_800.0,
            n2 / 48.0 + n3 / 15.0 - 437.0 * n4 / 1440.0 + 46.0 * n5 / 105.0
                - 1_118_711.0 * n6 / 3_870_720.0,
            17.0 * n3 / 480.0 - 37.0 * n4 / 840.0 - 209.0 * n5 / 4480.0 + 5569.0 * n6 / 90720.0,
            4397.0 * n4 / 161_280.0 - 11.0 * n5 / 504.0 - 830_251.0 * n6 / 7_257_600.0,
            4583.0 * n5 / 161_280.0 - 108_847.0 * n6 / 3_991_680.0,
            20_648_693.0 * n6 / 638_668_800.0,
        ];
        Kruger {
            e: el.e2().sqrt(),
            big_a,
            alpha,
            beta,
        }
    }

    /// tan of the conformal latitude of a geodetic latitude given by its tan (Karney eq 7).
    fn tau_prime(&self, tau: f64) -> f64 {
        let s = (1.0 + tau * tau).sqrt();
        let sigma = (self.e * (self.e * tau / s).atanh()).sinh();
        tau * (1.0 + sigma * sigma).sqrt() - sigma * s
    }

    /// The geodetic latitude's tan from the conformal one's, by Newton's method (Karney
    /// eqs 19-21); two or three steps reach full precision.
    fn tau(&self, tau_p: f64) -> f64 {
        let e2 = self.e * self.e;
        let mut tau = tau_p;
        for _ in 0..8 {
            let tp = self.tau_prime(tau);
            let d = (tau_p - tp) / (1.0 + tp * tp).sqrt() * (1.0 + (1.0 - e2) * tau * tau)
                / ((1.0 - e2) * (1.0 + tau * tau).sqrt());
            tau += d;
            if d.abs() <= 1e-14 * tau.abs().max(1.0) {
                break;
            }
        }
        tau
    }

    /// Forward: (xi, eta) of a latitude and a longitude from the central meridian (radians).
    fn forward(&self, phi: f64, lam: f64) -> (f64, f64) {
        let tp = self.tau_prime(phi.tan());
        let xi_p = tp.atan2(lam.cos());
        let eta_p = (lam.sin() / (tp * tp + lam.cos().powi(2)).sqrt()).asinh();
        let (mut xi, mut eta) = (xi_p, eta_p);
        for (j, a) in self.alpha.iter().enumerate() {
            let k = 2.0 * (j + 1) as f64;
            xi += a * (k * xi_p).sin() * (k * eta_p).cosh();
            eta += a * (k * xi_p).cos() * (k * eta_p).sinh();
        }
        (xi, eta)
    }

    /// Inverse: latitude and longitude from the central meridian (radians) of (xi, eta).
    fn inverse(&self, xi: f64, eta: f64) -> (f64, f64) {
        let (mut xi_p, mut eta_p) = (xi, eta);
        for (j, b) in self.beta.iter().enumerate() {
            let k = 2.0 * (j + 1) as f64;
            xi_p -= b * (k * xi).sin() * (k * eta).cosh();
            eta_p -= b * (k * xi).cos() * (k * eta).sinh();
        }
        let tau_p = xi_p.sin() / (eta_p.sinh().powi(2) + xi_p.cos().powi(2)).sqrt();
        let lam = eta_p.sinh().atan2(xi_p.cos());
        (self.tau(tau_p).atan(), lam)
    }
}

impl TransverseMercator {
    /// Grid easting and northing (metres) to WGS84-compatible longitude and latitude
    /// (degrees) on the same datum.
    pub fn to_lon_lat(&self, en: Coord<f64>) -> Coord<f64> {
        let k = Kruger::new(self.ellipsoid);
        let scale = self.k0 * k.big_a;
        let xi = (en.y - self.false_northing) / scale + self.xi0(&k);
        let eta = (en.x - self.false_easting) / scale;
        let (phi, lam) = k.inverse(xi, eta);
        Coord {
            x: self.lon0_deg + lam.to_degrees(),
            y: phi.to_degrees(),
        }
    }

    /// Longitude and latitude (degrees) to grid easting and northing (metres).
    pub fn from_lon_lat(&self, lon_lat: Coord<f64>) -> Coord<f64> {
        let k = Kruger::new(self.ellipsoid);
        let scale = self.k0 * k.big_a;
        let (xi, eta) = k.forward(
            lon_lat.y.to_radians(),
            (lon_lat.x - self.lon0_deg).to_radians(),
        );
        Coord {
            x: self.false_easting + scale * eta,
            y: self.false_northing + scale * (xi - self.xi0(&k)),
        }
    }

    /// xi of the natural origin's latitude (the meridian distance to it over `A`).
    fn xi0(&self, k: &Kruger) -> f64 {
        if self.lat0_deg == 0.0 {
            return 0.0;
        }
        k.forward(self.lat0_deg.to_radians(), 0.0).0
    }
}

/// Radius of the Web Mercator sphere (metres): the WGS84 semi-major axis (EPSG:3857).
const WEB_MERCATOR_R: f64 = 6_378_137.0;

/// Web Mercator (EPSG:3857) metres to WGS84 longitude and latitude (degrees). The
/// projection treats WGS84 coordinates as if on a sphere (EPSG method 1024), so the
/// inverse is the spherical one, with no datum change.
pub fn web_mercator_to_lon_lat(xy: Coord<f64>) -> Coord<f64> {
    Coord {
        x: (xy.x / WEB_MERCATOR_R).to_degrees(),
        y: (2.0 * (xy.y / WEB_MERCATOR_R).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm35fin() -> TransverseMercator {
        TransverseMercator {
            ellipsoid: Ellipsoid::GRS80,
            lat0_deg: 0.0,
            lon0_deg: 27.0,
            k0: 0.9996,
            false_easting: 500_000.0,
            false_northing: 0.0,
        }
    }

    fn close(a: Coord<f64>, b: Coord<f64>, tol: f64) -> bool {
        (a.x - b.x).abs() <= tol && (a.y - b.y).abs() <= tol
    }

    /// EPSG Guidance Note 7-2, section 3.5.3.1: the British National Grid (Airy 1830, a
    /// natural origin at 49N 2W, so a meridian distance to the origin to subtract). The
    /// note gives E 577274.99, N 69740.50 for 50d30'N 0d30'E from the older USGS series,
    /// good to a centimetre; PROJ's `tmerc` (Poder/Engsager) gives 577274.9838, 69740.4923.
    #[test]
    fn the_epsg_guidance_example_is_reproduced() {
        let osgb = TransverseMercator {
            ellipsoid: Ellipsoid {
                a: 6_377_563.396,
                f: 1.0 / 299.324_964_6,
            },
            lat0_deg: 49.0,
            lon0_deg: -2.0,
            k0: 0.999_601_271_7,
            false_easting: 400_000.0,
            false_northing: -100_000.0,
        };
        let en = osgb.from_lon_lat(Coord { x: 0.5, y: 50.5 });
        assert!(
            close(
                en,
                Coord {
                    x: 577_274.99,
                    y: 69_740.50
                },
                0.01
            ),
            "{en:?}"
        );
        assert!(
            close(
                en,
                Coord {
                    x: 577274.9838,
                    y: 69740.4923
                },
                0.0002
            ),
            "{en:?}"
        );
        let back = osgb.to_lon_lat(Coord {
            x: 577274.9838,
            y: 69740.4923,
        });
        assert!(close(back, Coord { x: 0.5, y: 50.5 }, 1e-7), "{back:?}");
    }

    /// Pairs computed by PROJ 9 (`cs2cs EPSG:4326 EPSG:3067`, `... EPSG:3346`,
    /// `... EPSG:32635`) to the millimetre: Helsinki's market square, Vilnius's cathedral
    /// square, and a point far from TM35FIN's central meridian (near Tornio, 2.9 degrees west of it).
    #[test]
    fn national_grids_match_proj_to_the_millimetre() {
        let lks94 = TransverseMercator {
            lon0_deg: 24.0,
            k0: 0.9998,
            ..tm35fin()
        };
        let utm35 = TransverseMercator {
            ellipsoid: Ellipsoid::WGS84,
            ..tm35fin()
        };
        let cases = [
            (tm35fin(), (24.9526, 60.1675), (386390.7527, 6671826.6629)),
            (tm35fin(), (24.1466, 65.8481), (369759.9563, 7305938.9978)),
            (lks94, (25.2877, 54.6858), (583029.0071, 6061802.3137)),
            (utm35, (24.9526, 60.1675), (386390.7527, 6671826.6631)),
        ];
        for (tm, (lon, lat), (e, n)) in cases {
            let en = tm.from_lon_lat(Coord { x: lon, y: lat });
            assert!(close(en, Coord { x: e, y: n }, 0.0002), "{en:?} != {e} {n}");
            let ll = tm.to_lon_lat(Coord { x: e, y: n });
            assert!(close(ll, Coord { x: lon, y: lat }, 3e-8), "{ll:?}");
        }
    }

    #[test]
    fn a_round_trip_is_exact_to_nanodegrees_across_a_wide_band() {
        let tm = tm35fin();
        for lat in [-80.0, -45.0, 0.0, 0.001, 30.0, 59.9, 60.17, 70.0, 84.0] {
            for dlon in [-9.0, -3.0, -0.5, 0.0, 0.5, 3.0, 9.0] {
                let p = Coord {
                    x: 27.0 + dlon,
                    y: lat,
                };
                let back = tm.to_lon_lat(tm.from_lon_lat(p));
                assert!(close(back, p, 1e-9), "{p:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn web_mercator_inverts_the_spherical_forward() {
        let (x, y) = (2_777_738.5, 8_439_219.2);
        let ll = web_mercator_to_lon_lat(Coord { x, y });
        let r = WEB_MERCATOR_R;
        assert!((ll.x.to_radians() * r - x).abs() < 1e-6);
        let y_back = r
            * (std::f64::consts::FRAC_PI_4 + ll.y.to_radians() / 2.0)
                .tan()
                .ln();
        assert!((y_back - y).abs() < 1e-6);
        assert!(close(
            web_mercator_to_lon_lat(Coord { x: 0.0, y: 0.0 }),
            Coord { x: 0.0, y: 0.0 },
            1e-12
        ));
    }
}
