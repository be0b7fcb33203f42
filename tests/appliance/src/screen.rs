//! What the TV shows: a QEMU screendump (PPM), kept as RGB pixels.

use std::path::Path;

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct Screen {
    pub width: u32,
    pub height: u32,
    /// Row-major RGB, three bytes a pixel.
    pub rgb: Vec<u8>,
}

impl Screen {
    /// Parses a binary PPM (`P6`, 8 bits a channel), as QEMU's `screendump` writes it.
    pub fn from_ppm(bytes: &[u8]) -> Result<Screen> {
        let bad = |why: &str| Error::Screen(format!("not a P6 PPM: {why}"));
        let mut fields = Vec::new();
        let mut pos = 0;
        while fields.len() < 4 {
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if bytes.get(pos) == Some(&b'#') {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
                continue;
            }
            let start = pos;
            while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if start == pos {
                return Err(bad("header ends early"));
            }
            fields.push(String::from_utf8_lossy(&bytes[start..pos]).into_owned());
        }
        // Exactly one whitespace byte separates the header from the pixels.
        pos += 1;
        if fields[0] != "P6" {
            return Err(bad("magic"));
        }
        let num = |s: &str| s.parse::<u32>().map_err(|_| bad("number"));
        let (width, height, max) = (num(&fields[1])?, num(&fields[2])?, num(&fields[3])?);
        if max != 255 {
            return Err(bad("not 8 bits a channel"));
        }
        let len = width as usize * height as usize * 3;
        let rgb = bytes
            .get(pos..pos + len)
            .ok_or_else(|| bad("pixels cut short"))?
            .to_vec();
        Ok(Screen { width, height, rgb })
    }

    pub fn save_png(&self, path: &Path) -> Result<()> {
        let file =
            std::fs::File::create(path).map_err(Error::io(format!("create {}", path.display())))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| Error::Screen(format!("PNG: {e}")))?;
        w.write_image_data(&self.rgb)
            .map_err(|e| Error::Screen(format!("PNG: {e}")))
    }

    fn pixels(&self) -> impl Iterator<Item = [u8; 3]> + '_ {
        self.rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]])
    }

    /// Mean luma (0–255).
    pub fn mean_brightness(&self) -> f64 {
        let n = (self.rgb.len() / 3).max(1) as f64;
        self.pixels()
            .map(|[r, g, b]| 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b))
            .sum::<f64>()
            / n
    }

    /// The most common colour and the share of the screen it covers.
    pub fn dominant_colour(&self) -> ([u8; 3], f64) {
        let mut counts = std::collections::HashMap::new();
        for p in self.pixels() {
            *counts.entry(p).or_insert(0u64) += 1;
        }
        let n = (self.rgb.len() / 3).max(1) as f64;
        counts
            .into_iter()
            .max_by_key(|(_, c)| *c)
            .map(|(p, c)| (p, c as f64 / n))
            .unwrap_or(([0, 0, 0], 0.0))
    }

    pub fn distinct_colours(&self) -> usize {
        self.pixels()
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// Share of pixels brighter than `luma` (0–255).
    pub fn share_brighter_than(&self, luma: f64) -> f64 {
        let n = (self.rgb.len() / 3).max(1) as f64;
        self.pixels()
            .filter(|&[r, g, b]| {
                0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b) > luma
            })
            .count() as f64
            / n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ppm_parses_into_its_pixels() {
        let mut ppm = b"P6\n# qemu\n2 1\n255\n".to_vec();
        ppm.extend_from_slice(&[255, 255, 255, 0, 0, 0]);
        let s = Screen::from_ppm(&ppm).unwrap();
        assert_eq!((s.width, s.height), (2, 1));
        assert_eq!(s.distinct_colours(), 2);
        assert!((s.mean_brightness() - 127.5).abs() < 0.01);
        assert!((s.share_brighter_than(100.0) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_truncated_ppm_is_refused() {
        assert!(Screen::from_ppm(b"P6\n2 2\n255\n\0\0\0").is_err());
        assert!(Screen::from_ppm(b"P5\n1 1\n255\n\0").is_err());
    }
}
