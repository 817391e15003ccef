// A picked file or a camera frame -> the model's input: the model's crop (its card's
// input.crop, the config's crop it was trained with), resized by the browser to S x S (a
// picture already S x S whose crop is the whole picture is used as it is, pixel for
// pixel), as Float32Array [S*S*3] RGB in 0..1.

// Larger pictures are refused from their header, before decoding (tfsym3d.io.images
// MAX_PIXELS; a 1 MB PNG can declare 20000 x 20000 pixels), and a JPEG header claiming
// more pixels than its bytes can hold is corrupt: both written from Python at build time.
import {JPEG_MAX_PIXELS_PER_BYTE, MAX_PIXELS} from './constants.js';
export {MAX_PIXELS};

// [width, height] as the header of a JPEG, PNG, GIF or BMP declares it, or null for
// other formats or a header not within `bytes` (a Uint8Array of the file's start; 256 kB
// holds every header but one behind a huge EXIF block). As tfsym3d.io.images
// declared_pixels reads them.
export function declaredSize(bytes) {
  const be16 = (i) => (bytes[i] << 8) | bytes[i + 1];
  const be32 = (i) => be16(i) * 65536 + be16(i + 2);
  const le16 = (i) => bytes[i] | (bytes[i + 1] << 8);
  const le32 = (i) => (le16(i) + le16(i + 2) * 65536) | 0; // signed
  if (bytes.length >= 24 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
      bytes[3] === 0x47) return [be32(16), be32(20)];
  if (bytes.length >= 10 && bytes[0] === 0x47 && bytes[1] === 0x49 && bytes[2] === 0x46) {
    return [le16(6), le16(8)];
  }
  if (bytes.length >= 26 && bytes[0] === 0x42 && bytes[1] === 0x4d) {
    return [Math.abs(le32(18)), Math.abs(le32(22))]; // a negative height: top-down rows
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let i = 2; // JPEG: walk the segments to the frame header (SOF0..SOF15 but 4, 8, 12)
    while (i + 9 < bytes.length) {
      if (bytes[i] !== 0xff) return null;
      const marker = bytes[i + 1];
      if (marker === 0xff) { i += 1; continue; } // fill byte
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return [be16(i + 7), be16(i + 5)];
      }
      if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
        i += 2; // markers without a length
        continue;
      }
      i += 2 + be16(i + 2);
    }
  }
  return null;
}

// Decodes an image file; throws an Error whose message is shown to the user.
export async function decodeFile(file) {
  if (!file || file.size === 0) throw new Error(`${file ? file.name : 'file'}: the file is empty`);
  const head = new Uint8Array(await file.slice(0, 262144).arrayBuffer());
  const size = declaredSize(head);
  if (size && size[0] * size[1] > MAX_PIXELS) {
    throw new Error(`${file.name}: ${size[0]}x${size[1]} is ${size[0] * size[1]} pixels, ` +
                    `over the limit of ${MAX_PIXELS}; refused before decoding`);
  }
  if (size && head[0] === 0xff && head[1] === 0xd8 &&
      size[0] * size[1] > JPEG_MAX_PIXELS_PER_BYTE * file.size) {
    throw new Error(`${file.name}: corrupt JPEG: its header declares ${size[0]}x${size[1]} ` +
                    `pixels, more than its ${file.size} bytes can hold`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, {colorSpaceConversion: 'none',
                                            premultiplyAlpha: 'none'});
  } catch (e) {
    throw new Error(`${file.name}: not an image this browser can decode`);
  }
  if (bitmap.width * bitmap.height > MAX_PIXELS) {
    bitmap.close();
    throw new Error(`${file.name}: ${bitmap.width}x${bitmap.height} is over the limit of ` +
                    `${MAX_PIXELS} pixels`); // a format whose header was not read above
  }
  return bitmap;
}

// tfsym3d.io.images.crop_box: the box [x0, y0, w, h] of a crop spec on a w x h picture:
// null -> the centre square; a number n -> the centre square of side min(n, w, h);
// [x0, y0, w, h] -> that box (outside the picture the browser clips it, where Python
// replicates the border: such boxes agree only inside the picture).
export function cropBox(w, h, crop) {
  if (crop === null || crop === undefined || typeof crop === 'number') {
    const side = crop === null || crop === undefined ? Math.min(w, h) : Math.min(crop, w, h);
    return [Math.floor((w - side) / 2), Math.floor((h - side) / 2), side, side];
  }
  return crop;
}

// source: ImageBitmap, HTMLVideoElement or HTMLImageElement (width/height or
// videoWidth/videoHeight). canvas: an S x S canvas to draw the crop into (shown as the
// input crop). crop: the model's crop spec (cropBox). Returns Float32Array [S*S*3].
export function cropToInput(source, canvas, crop, mirror = false) {
  const s = canvas.width;
  const w = source.videoWidth || source.width, h = source.videoHeight || source.height;
  const [x0, y0, bw, bh] = cropBox(w, h, crop);
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.save();
  if (mirror) { ctx.translate(s, 0); ctx.scale(-1, 1); }
  ctx.drawImage(source, x0, y0, bw, bh, 0, 0, s, s);
  ctx.restore();
  const rgba = ctx.getImageData(0, 0, s, s).data;
  const out = new Float32Array(s * s * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4) {
    out[q++] = rgba[p] / 255;
    out[q++] = rgba[p + 1] / 255;
    out[q++] = rgba[p + 2] / 255;
  }
  return out;
}
