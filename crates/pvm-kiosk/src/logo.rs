//! The venue's logo arrives as a data URL (`data:image/png;base64,…`, at most 256 KiB, see
//! `pvm_core::venue`). PNG is what the console produces; anything else is skipped and the
//! screens are drawn without a logo.

use base64::Engine;
use slint::{Image, Rgba8Pixel, SharedPixelBuffer};

/// Largest logo side we keep, so a huge image cannot cost megabytes of RAM on the Pi.
const MAX_SIDE: u32 = 2048;

pub fn decode_data_url(url: &str) -> Option<Image> {
    let b64 = url.strip_prefix("data:image/png;base64,")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    decode_png(&bytes)
}

pub fn decode_png(bytes: &[u8]) -> Option<Image> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().ok()?;
    let (w, h) = (reader.info().width, reader.info().height);
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return None;
    }
    let mut raw = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut raw).ok()?;
    let data = &raw[..frame.buffer_size()];
    let mut buf = SharedPixelBuffer::<Rgba8Pixel>::new(w, h);
    let px = buf.make_mut_slice();
    let channels = frame.color_type.samples();
    if data.len() < px.len() * channels {
        return None;
    }
    for (i, p) in px.iter_mut().enumerate() {
        let s = &data[i * channels..(i + 1) * channels];
        *p = match channels {
            1 => Rgba8Pixel::new(s[0], s[0], s[0], 255),
            2 => Rgba8Pixel::new(s[0], s[0], s[0], s[1]),
            3 => Rgba8Pixel::new(s[0], s[1], s[2], 255),
            _ => Rgba8Pixel::new(s[0], s[1], s[2], s[3]),
        };
    }
    Some(Image::from_rgba8(buf))
}
