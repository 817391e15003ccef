// The canonical shape in three.js: the mesh of mesh.js, textured with a map of the
// model (unlit: the relighting is the model's own formula, baked into the texture),
// turned with a finger or the mouse (OrbitControls), exported as GLB.

import * as THREE from 'three';
import {OrbitControls} from 'three/addons/controls/OrbitControls.js';
import {GLTFExporter} from 'three/addons/exporters/GLTFExporter.js';
import {meshFaces, meshUV, meshVertices, BORDER_TRIM} from './mesh.js';

export class ShapeView {
  constructor(container) {
    this.container = container;
    this.renderer = new THREE.WebGLRenderer({antialias: true, preserveDrawingBuffer: true});
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x20242a);
    this.camera = new THREE.PerspectiveCamera(30, 1, 0.01, 10);
    this.camera.position.set(0.17, 0.05, 0.5); // a little turned: the shape shows
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.enableDamping = true;
    this.controls.addEventListener('change', () => this.draw());
    this.mesh = null;
    this.textureCanvas = document.createElement('canvas');
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  resize() {
    const w = this.container.clientWidth || 300, h = this.container.clientHeight || 300;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.draw();
  }

  draw() {
    this.controls.update();
    this.renderer.render(this.scene, this.camera);
  }

  // depth Float32Array [S*S]; texture Float32Array [S*S*3] in 0..1 (trimmed here like
  // the mesh); camera: the model card's camera.
  show(depth, size, camera, texture) {
    const trim = BORDER_TRIM, inner = size - 2 * trim;
    if (!this.mesh || this.size !== size) {
      const geometry = new THREE.BufferGeometry();
      geometry.setAttribute('position', new THREE.BufferAttribute(
        meshVertices(depth, size, size, camera), 3));
      geometry.setAttribute('uv', new THREE.BufferAttribute(meshUV(size, size), 2));
      geometry.setIndex(new THREE.BufferAttribute(meshFaces(size, size), 1));
      this.textureCanvas.width = this.textureCanvas.height = inner;
      const map = new THREE.CanvasTexture(this.textureCanvas);
      map.colorSpace = THREE.SRGBColorSpace;
      map.magFilter = THREE.LinearFilter;
      const material = new THREE.MeshBasicMaterial({map, side: THREE.DoubleSide});
      if (this.mesh) { this.scene.remove(this.mesh); this.mesh.geometry.dispose(); }
      this.mesh = new THREE.Mesh(geometry, material);
      this.mesh.name = 'tfsym3d_canonical_shape';
      this.scene.add(this.mesh);
      this.size = size;
    } else {
      const position = this.mesh.geometry.attributes.position;
      meshVertices(depth, size, size, camera, trim, position.array);
      position.needsUpdate = true;
    }
    this.mesh.geometry.computeBoundingSphere();
    this.setTexture(texture);
  }

  setTexture(texture) {
    const size = this.size, trim = BORDER_TRIM, inner = size - 2 * trim;
    const ctx = this.textureCanvas.getContext('2d');
    const img = ctx.createImageData(inner, inner);
    for (let i = 0; i < inner; i++) {
      for (let j = 0; j < inner; j++) {
        const p = 3 * ((i + trim) * size + j + trim), q = 4 * (i * inner + j);
        for (let c = 0; c < 3; c++) img.data[q + c] = Math.round(255 * texture[p + c]);
        img.data[q + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    this.mesh.material.map.needsUpdate = true;
    this.draw();
  }

  vertices() {
    return this.mesh ? Array.from(this.mesh.geometry.attributes.position.array) : [];
  }

  // The mesh (geometry and texture) as a binary glTF: Promise<ArrayBuffer>.
  glb() {
    return new GLTFExporter().parseAsync(this.mesh, {binary: true});
  }
}
