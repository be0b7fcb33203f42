//! Rendering without a display: Slint's software renderer into a buffer in memory. The tests
//! render every screen this way, and the bench measures the very code path the Pi runs (the
//! linuxkms backend uses the same renderer, only its buffer is the scan-out buffer).

use crate::ui::KioskWindow;
use slint::platform::software_renderer::{
    MinimalSoftwareWindow, PhysicalRegion, RenderingRotation, RepaintBufferType,
};
use slint::platform::{Platform, WindowAdapter};
use slint::{PhysicalSize, PlatformError, Rgb8Pixel};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    #[error("slint: {0}")]
    Platform(#[from] PlatformError),
    #[error("a headless platform is already installed on this thread")]
    AlreadyInstalled,
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("encoding PNG: {0}")]
    Png(#[from] png::EncodingError),
}

struct HeadlessPlatform {
    next: RefCell<Option<Rc<MinimalSoftwareWindow>>>,
}

impl Platform for HeadlessPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, PlatformError> {
        self.next
            .borrow_mut()
            .take()
            .map(|w| w as Rc<dyn WindowAdapter>)
            .ok_or_else(|| PlatformError::Other("one headless window per frame".into()))
    }
}

/// Pixels a repaint covered (the sum of its rectangles, not their bounding box).
pub fn region_area(region: &PhysicalRegion) -> u64 {
    region
        .iter()
        .map(|(_, size)| u64::from(size.width) * u64::from(size.height))
        .sum()
}

/// The rotation of a TV mounted in portrait, as the renderer needs it.
pub fn rendering_rotation(degrees: u16) -> RenderingRotation {
    match degrees {
        90 => RenderingRotation::Rotate90,
        180 => RenderingRotation::Rotate180,
        270 => RenderingRotation::Rotate270,
        _ => RenderingRotation::NoRotation,
    }
}

/// One kiosk window drawn into memory: a `width`×`height` panel (as the TV scans it out),
/// with the UI laid out for the rotated stage.
pub struct Frame {
    pub window: KioskWindow,
    adapter: Rc<MinimalSoftwareWindow>,
    pub width: u32,
    pub height: u32,
    rotation: u16,
    repaint: RepaintBufferType,
    full_repaint: bool,
    pub pixels: Vec<Rgb8Pixel>,
}

/// Installs the headless platform on this thread (once) and makes a window. Only one window
/// can exist per thread (the platform hands out the adapter made here).
pub fn frame(
    width: u32,
    height: u32,
    rotation: u16,
    repaint: RepaintBufferType,
) -> Result<Frame, HeadlessError> {
    let adapter = MinimalSoftwareWindow::new(repaint);
    let platform = HeadlessPlatform {
        next: RefCell::new(Some(adapter.clone())),
    };
    slint::platform::set_platform(Box::new(platform))
        .map_err(|_| HeadlessError::AlreadyInstalled)?;
    let window = KioskWindow::new()?;
    let (w, h) = if rotation == 90 || rotation == 270 {
        (height, width)
    } else {
        (width, height)
    };
    adapter.set_size(PhysicalSize::new(w, h));
    slint::ComponentHandle::show(&window)?;
    Ok(Frame {
        window,
        adapter,
        width,
        height,
        rotation,
        repaint,
        full_repaint: true,
        pixels: vec![Rgb8Pixel { r: 0, g: 0, b: 0 }; (width * height) as usize],
    })
}

impl Frame {
    /// Runs due timers and animations, then repaints what changed. Returns the region
    /// repainted (empty when nothing changed).
    pub fn render(&mut self) -> Option<PhysicalRegion> {
        slint::platform::update_timers_and_animations();
        let mut region = None;
        let stride = self.width as usize;
        let pixels = &mut self.pixels;
        let rotation = rendering_rotation(self.rotation);
        let (full, normal) = (self.full_repaint, self.repaint);
        self.adapter.draw_if_needed(|renderer| {
            renderer.set_rendering_rotation(rotation);
            // A new buffer (after a resize) must be painted whole; switching the buffer type
            // also drops the renderer's partial-repaint cache, so the next frame is whole too.
            renderer.set_repaint_buffer_type(if full {
                RepaintBufferType::NewBuffer
            } else {
                normal
            });
            region = Some(renderer.render(pixels.as_mut_slice(), stride));
        });
        if region.is_some() {
            self.full_repaint = false;
        }
        region
    }

    /// Changes the panel's size and rotation (the same window, so one per thread suffices).
    pub fn resize(&mut self, width: u32, height: u32, rotation: u16) {
        self.rotation = rotation;
        let (w, h) = if rotation == 90 || rotation == 270 {
            (height, width)
        } else {
            (width, height)
        };
        self.adapter.set_size(PhysicalSize::new(w, h));
        self.width = width;
        self.height = height;
        self.pixels = vec![Rgb8Pixel { r: 0, g: 0, b: 0 }; (width * height) as usize];
        self.full_repaint = true;
        self.invalidate();
    }

    /// How the renderer may reuse the buffer: `ReusedBuffer` repaints only what changed
    /// (what the kiosk does), `NewBuffer` repaints the whole frame every time.
    pub fn set_repaint(&mut self, repaint: RepaintBufferType) {
        self.repaint = repaint;
        self.invalidate();
    }

    /// Asks for a render even if nothing changed (it repaints what the renderer finds dirty).
    pub fn invalidate(&mut self) {
        self.adapter.request_redraw();
        slint::ComponentHandle::window(&self.window).request_redraw();
    }

    /// Writes the buffer as an RGB PNG.
    pub fn write_png(&self, path: &Path) -> Result<(), HeadlessError> {
        let file = std::fs::File::create(path).map_err(|source| HeadlessError::Write {
            path: path.display().to_string(),
            source,
        })?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        enc.set_compression(png::Compression::Fast);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        let bytes: Vec<u8> = self.pixels.iter().flat_map(|p| [p.r, p.g, p.b]).collect();
        writer.write_image_data(&bytes)?;
        Ok(())
    }

    /// How many distinct colours the frame has (a blank or single-colour frame has 1).
    pub fn distinct_colours(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        for p in self.pixels.iter().step_by(7) {
            seen.insert((p.r, p.g, p.b));
            if seen.len() > 1000 {
                break;
            }
        }
        seen.len()
    }

    /// The share of pixels (0..1) that differ from the background colour `bg`.
    pub fn ink_share(&self, bg: (u8, u8, u8)) -> f64 {
        let differ = self.pixels.iter().filter(|p| (p.r, p.g, p.b) != bg).count();
        differ as f64 / self.pixels.len().max(1) as f64
    }

    /// The colour at (x, y) of the panel.
    pub fn pixel(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let p = self.pixels[(y * self.width + x) as usize];
        (p.r, p.g, p.b)
    }
}
