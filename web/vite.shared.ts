/**
 * The Vite setup both apps share: React, precompressed `.br`/`.gz` next to every built file (the
 * assets server sends them), a manifest for the bundle-size check, and a dev server that proxies
 * API paths to the local Envoy of `make run` (keeping the Host header, so white-label works).
 */
import { defineConfig, type UserConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { compression } from 'vite-plugin-compression2';

const envoy = process.env.SENTRA_ENVOY_URL ?? 'http://127.0.0.1:8080';

export function appConfig(base: string, port: number): UserConfig {
  return defineConfig({
    base,
    plugins: [react(), compression({ algorithms: ['gzip', 'brotliCompress'] })],
    build: { manifest: true, target: 'es2022', sourcemap: false, chunkSizeWarningLimit: 700 },
    server: {
      port,
      proxy: {
        '/sentra.': { target: envoy, changeOrigin: false },
        '/grpc.': { target: envoy, changeOrigin: false },
      },
    },
  });
}
