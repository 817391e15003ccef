// A picked file or a camera frame -> the model's input: the model's crop (its card's
// input.crop, the config's crop it was trained with), resized by the browser to S x S (a
// picture already S x S whose crop is the whole picture is used as it is, pixel for
// pixel), as Float32Array [S*S*3] RGB in 0..1.

export const MAX_PIXELS = 50e6; // larger pictures are refused before decoding

// Decodes an image file; throws an Error whose message is shown to the user.
export async function decodeFile(file) {
  if (!file || file.size === 0) throw new Error(`${file ? file.name : 'file'}: the file is empty`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, {colorSpaceConversion: 'none',
                                            premultiplyAlpha: 'none'});
  } catch (e) {
    throw new Error(`${file.name}: not an image this browser can decode`);
  }
  if (bitmap.width * bitmap.height > MAX_PIXELS) {
    bitmap.close();
    throw new Error(`${file.name}: ${bitmap.width}x${bitmap.height} is too large`);
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
