import { describe, expect, it } from 'vitest';
import jsQR from 'jsqr';
import { qrPath, QUIET } from './qr';

/** Paints the SVG path's rectangles into an RGBA image, the way a camera would see the code. */
function rasterise(size: number, d: string, scale = 4): { data: Uint8ClampedArray; width: number } {
  const width = size * scale;
  const px = new Uint8ClampedArray(width * width * 4).fill(255);
  for (const m of d.matchAll(/M(\d+) (\d+)h(\d+)v1h-\d+z/g)) {
    const [x, y, run] = [Number(m[1]), Number(m[2]), Number(m[3])];
    for (let yy = y * scale; yy < (y + 1) * scale; yy++)
      for (let xx = x * scale; xx < (x + run) * scale; xx++) {
        const i = (yy * width + xx) * 4;
        px[i] = px[i + 1] = px[i + 2] = 0;
      }
  }
  return { data: px, width };
}

describe('qrPath', () => {
  for (const url of ['http://pvm.local', 'http://192.168.178.42:8080', 'http://the-long-venue-name-poker-room.local:8080/#/system']) {
    it(`draws a code that a QR reader decodes back to ${url}`, () => {
      const { size, d } = qrPath(url);
      const img = rasterise(size, d);
      const found = jsQR(img.data, img.width, img.width);
      expect(found?.data).toBe(url);
    });
  }

  it('leaves the quiet zone around the code blank', () => {
    const { size, d } = qrPath('http://pvm.local');
    // 16 bytes at medium correction need version 2, 25 modules a side: the smallest that fits.
    expect(size).toBe(25 + 2 * QUIET);
    for (const m of d.matchAll(/M(\d+) (\d+)h(\d+)/g)) {
      const [x, y, run] = [Number(m[1]), Number(m[2]), Number(m[3])];
      expect(x).toBeGreaterThanOrEqual(QUIET);
      expect(y).toBeGreaterThanOrEqual(QUIET);
      expect(x + run).toBeLessThanOrEqual(size - QUIET);
      expect(y).toBeLessThan(size - QUIET);
    }
  });
});
