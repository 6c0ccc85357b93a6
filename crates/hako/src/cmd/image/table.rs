//! `hako image list`'s table: name, version, kind, size, created (UTC), how old its packages
//! are, how many instances run an older version of it, source.

use std::collections::BTreeMap;

use hako_image::{Image, ImageKind};

use hako_model::units::format_size;

/// What the table says beside each image's own metadata.
pub struct Extra<'a> {
    /// Now, in Unix seconds.
    pub now: u64,
    /// When an image version's packages were fetched (Unix seconds).
    pub packages_built: &'a dyn Fn(&Image) -> u64,
    /// Per image name, running instances of an older version than the latest; `None`: no
    /// `hako serve` answered.
    pub older: Option<&'a BTreeMap<String, usize>>,
}

/// How long ago, in one or two units: `40s`, `12m`, `3h20m`, `5d2h`.
pub fn ago(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// Renders images as an aligned text table with a header line. The OLDER column is on each
/// name's latest version: instances still running an earlier one.
pub fn render(images: &[Image], extra: &Extra<'_>) -> String {
    let header = [
        "NAME", "VERSION", "KIND", "SIZE", "CREATED", "PACKAGES", "OLDER", "SOURCE",
    ]
    .map(String::from);
    let latest: BTreeMap<&str, u32> = images.iter().fold(BTreeMap::new(), |mut m, i| {
        let v = m.entry(i.name.as_str()).or_insert(0);
        *v = (*v).max(i.version);
        m
    });
    let mut rows = vec![header];
    for i in images {
        let is_latest = latest.get(i.name.as_str()) == Some(&i.version);
        let older = match (extra.older, is_latest) {
            (Some(o), true) => o.get(&i.name).copied().unwrap_or(0).to_string(),
            _ => "-".into(),
        };
        let packages = match i.kind {
            ImageKind::Host => "host's".into(),
            ImageKind::Rootfs if i.packages.is_empty() => "-".into(),
            ImageKind::Rootfs => {
                format!(
                    "{} old",
                    ago(extra.now.saturating_sub((extra.packages_built)(i)))
                )
            }
        };
        rows.push([
            i.name.clone(),
            i.version.to_string(),
            match i.kind {
                ImageKind::Rootfs => "rootfs".into(),
                ImageKind::Host => "host".into(),
            },
            match i.kind {
                // A host image is the host's own files: no size of its own.
                ImageKind::Host => "-".into(),
                ImageKind::Rootfs => format_size(i.size_bytes),
            },
            format_utc(i.created_unix),
            packages,
            older,
            source(i),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Where the image came from, with a debootstrap build's packages.
fn source(i: &Image) -> String {
    if i.packages.is_empty() {
        i.source.clone()
    } else {
        format!("{} [{}]", i.source, i.packages.join(","))
    }
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn format_utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_709_251_199), "2024-02-29 23:59:59");
        assert_eq!(format_utc(1_795_651_200 + 3_723), "2026-11-26 01:02:03");
    }

    #[test]
    fn days_round_trip_through_the_calendar() {
        // Consecutive days never repeat or skip a date.
        let mut prev = civil_from_days(-1);
        for day in 0..800_000 {
            let cur = civil_from_days(day);
            assert!(cur > prev, "day {day}: {cur:?} after {prev:?}");
            prev = cur;
        }
    }

    #[test]
    fn renders_an_aligned_table() {
        let images: Vec<Image> = serde_json::from_str(
            r#"[{"name":"bb","version":1,"kind":"rootfs","created_unix":0,"size_bytes":1536,
                 "source":"/tmp/bb","storage":{"type":"local"}},
                {"name":"php","version":12,"kind":"rootfs","created_unix":86400,"size_bytes":0,
                 "source":"debootstrap bookworm","packages":["php-cli"],
                 "storage":{"type":"debian_cache","key":"k"}},
                {"name":"h","version":2,"kind":"host","created_unix":60,"size_bytes":0,
                 "source":"host","storage":{"type":"host","binds":[]}}]"#,
        )
        .unwrap();
        let older = BTreeMap::from([("php".to_string(), 3usize)]);
        let built = |i: &Image| i.created_unix;
        let extra = Extra {
            now: 86_400 + 7200,
            packages_built: &built,
            older: Some(&older),
        };
        let table = render(&images, &extra);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].starts_with("NAME  VERSION  KIND    SIZE    CREATED"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("bb    1        rootfs  1.5KiB  1970-01-01 00:00:00  -"),
            "{table}"
        );
        assert!(lines[2].contains("2h0m old  3"), "{table}");
        assert!(lines[1].contains("/tmp/bb"), "{table}");
        assert!(
            lines[2].ends_with("debootstrap bookworm [php-cli]"),
            "{table}"
        );
        assert!(lines[3].contains("host    -"), "{table}");
        let col = lines[0].find("CREATED").unwrap();
        assert!(
            lines.iter().skip(1).all(|l| l[col..].starts_with("19")),
            "{table}"
        );
    }
}
