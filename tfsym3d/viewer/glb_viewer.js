// A small self-contained WebGL viewer for the textured GLB meshes that
// `tfsym3d reconstruct` writes (one triangle primitive, POSITION, TEXCOORD_0,
// indices and a PNG base-colour texture). No network and no libraries needed:
// index.html loads each mesh as a base64 string from NAME/mesh.glb.js.
//   TFSYM3D.parseGlb(arrayBuffer) -> {positions, uvs, indices, imageBytes, mime}
//   TFSYM3D.view(canvas, base64Glb)  draws the mesh; drag to turn it.
(function (root) {
  'use strict';
  var COMPONENTS = {SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4};
  var TYPES = {5121: Uint8Array, 5123: Uint16Array, 5125: Uint32Array, 5126: Float32Array};

  function parseGlb(buffer) {
    var view = new DataView(buffer);
    if (view.getUint32(0, true) !== 0x46546c67) throw new Error('not a GLB file');
    var json = null, bin = null, offset = 12;
    while (offset < view.byteLength) {
      var length = view.getUint32(offset, true), type = view.getUint32(offset + 4, true);
      var chunk = buffer.slice(offset + 8, offset + 8 + length);
      if (type === 0x4e4f534a) json = JSON.parse(new TextDecoder().decode(chunk));
      if (type === 0x004e4942) bin = chunk;
      offset += 8 + length;
    }
    if (!json || !bin) throw new Error('GLB without JSON or binary chunk');
    function accessor(i) {
      var a = json.accessors[i], bv = json.bufferViews[a.bufferView];
      var Type = TYPES[a.componentType], n = a.count * COMPONENTS[a.type];
      var start = (bv.byteOffset || 0) + (a.byteOffset || 0);
      return new Type(bin.slice(start, start + n * Type.BYTES_PER_ELEMENT));
    }
    var prim = json.meshes[0].primitives[0];
    var out = {positions: accessor(prim.attributes.POSITION),
               uvs: prim.attributes.TEXCOORD_0 !== undefined ?
                 accessor(prim.attributes.TEXCOORD_0) : null,
               indices: new Uint32Array(accessor(prim.indices)), imageBytes: null, mime: null};
    if (json.images && json.images.length) {
      var im = json.images[0], bv = json.bufferViews[im.bufferView];
      var s = bv.byteOffset || 0;
      out.imageBytes = new Uint8Array(bin.slice(s, s + bv.byteLength));
      out.mime = im.mimeType || 'image/png';
    }
    return out;
  }

  function decodeBase64(text) {
    var raw = atob(text), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function shader(gl, type, source) {
    var s = gl.createShader(type);
    gl.shaderSource(s, source);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
    return s;
  }

  var VS = 'attribute vec3 p; attribute vec2 t; uniform mat4 m; varying vec2 uv;' +
           'void main(){ uv = t; gl_Position = m * vec4(p, 1.0); }';
  var FS = 'precision mediump float; varying vec2 uv; uniform sampler2D tex;' +
           'void main(){ gl_FragColor = texture2D(tex, uv); }';

  // Column-major 4x4: perspective(fovy, 1, near, far) * translate(0,0,-dist) * Rx * Ry.
  function matrix(yaw, pitch, dist) {
    var f = 1 / Math.tan(0.35), n = 0.01, fa = 10;
    var cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
    var r = [cy, sp * sy, -cp * sy, 0, 0, cp, sp, 0, sy, -sp * cy, cp * cy, 0, 0, 0, 0, 1];
    r[14] = -dist;
    var p = [f, 0, 0, 0, 0, f, 0, 0, 0, 0, (fa + n) / (n - fa), -1, 0, 0, 2 * fa * n / (n - fa), 0];
    var out = new Array(16);
    for (var c = 0; c < 4; c++) for (var row = 0; row < 4; row++) {
      var v = 0;
      for (var k = 0; k < 4; k++) v += p[k * 4 + row] * r[c * 4 + k];
      out[c * 4 + row] = v;
    }
    return new Float32Array(out);
  }

  function view(canvas, base64) {
    var gl = canvas.getContext('webgl');
    if (!gl || !base64) return;
    var mesh = parseGlb(decodeBase64(base64));
    gl.getExtension('OES_element_index_uint');
    var prog = gl.createProgram();
    gl.attachShader(prog, shader(gl, gl.VERTEX_SHADER, VS));
    gl.attachShader(prog, shader(gl, gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(prog);
    gl.useProgram(prog);
    // Centre and scale the mesh to unit size.
    var lo = [1e9, 1e9, 1e9], hi = [-1e9, -1e9, -1e9], P = mesh.positions;
    for (var i = 0; i < P.length; i++) {
      lo[i % 3] = Math.min(lo[i % 3], P[i]); hi[i % 3] = Math.max(hi[i % 3], P[i]);
    }
    var size = Math.max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) || 1;
    var pos = new Float32Array(P.length);
    for (i = 0; i < P.length; i++) pos[i] = (P[i] - (lo[i % 3] + hi[i % 3]) / 2) / size;
    function attribute(name, data, n) {
      var b = gl.createBuffer(), loc = gl.getAttribLocation(prog, name);
      gl.bindBuffer(gl.ARRAY_BUFFER, b);
      gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
      gl.enableVertexAttribArray(loc);
      gl.vertexAttribPointer(loc, n, gl.FLOAT, false, 0, 0);
    }
    attribute('p', pos, 3);
    attribute('t', mesh.uvs || new Float32Array(pos.length / 3 * 2), 2);
    var ib = gl.createBuffer();
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, ib);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, mesh.indices, gl.STATIC_DRAW);
    var tex = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, 1, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE,
                  new Uint8Array([200, 200, 200, 255]));
    var yaw = 0.35, pitch = 0, drag = null;  // a little turned: the relief shows
    function draw() {
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.clearColor(0.2, 0.2, 0.2, 1);
      gl.enable(gl.DEPTH_TEST);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.uniformMatrix4fv(gl.getUniformLocation(prog, 'm'), false, matrix(yaw, pitch, 2.2));
      gl.drawElements(gl.TRIANGLES, mesh.indices.length, gl.UNSIGNED_INT, 0);
    }
    if (mesh.imageBytes) {
      var img = new Image();
      img.onload = function () {
        gl.bindTexture(gl.TEXTURE_2D, tex);
        // glTF's texture coordinates start at the image's top row, as WebGL's do.
        gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, img);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
        draw();
      };
      img.src = URL.createObjectURL(new Blob([mesh.imageBytes], {type: mesh.mime}));
    }
    canvas.addEventListener('mousedown', function (e) { drag = [e.clientX, e.clientY]; });
    window.addEventListener('mouseup', function () { drag = null; });
    canvas.addEventListener('mousemove', function (e) {
      if (!drag) return;
      yaw += (e.clientX - drag[0]) * 0.01;
      pitch = Math.max(-1.5, Math.min(1.5, pitch + (e.clientY - drag[1]) * 0.01));
      drag = [e.clientX, e.clientY];
      draw();
    });
    draw();
  }

  root.TFSYM3D = {parseGlb: parseGlb, view: view};
  if (typeof module !== 'undefined') module.exports = root.TFSYM3D;
})(typeof window !== 'undefined' ? window : globalThis);
