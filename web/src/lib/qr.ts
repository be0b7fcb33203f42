// QR codes drawn on the spot, so a phone can scan its way to the console from the TV or from
// another phone. Encoding is the small `uqr` package (bundled, nothing loaded from outside);
// this turns its module matrix into one SVG path, which scales to any screen without blur.

import { encode } from 'uqr';

export interface QrPath {
  /** Modules per side, quiet zone included. */
  size: number;
  /** SVG path data: one unit square per dark module. */
  d: string;
}

/** The quiet zone scanners need around the code, in modules. */
export const QUIET = 4;

/** The QR code for `text` (medium error correction: a TV across the room, glare, a smudge). */
export function qrPath(text: string): QrPath {
  const { data, size } = encode(text, { ecc: 'M', border: 0 });
  let d = '';
  for (let y = 0; y < size; y++) {
    let x = 0;
    while (x < size) {
      if (!data[y][x]) {
        x++;
        continue;
      }
      // A run of dark modules in a row is one rectangle: a fraction of the path's length.
      let run = 1;
      while (x + run < size && data[y][x + run]) run++;
      d += `M${x + QUIET} ${y + QUIET}h${run}v1h${-run}z`;
      x += run;
    }
  }
  return { size: size + 2 * QUIET, d };
}
