// Builds a JavaScript plugin into a component of the `action` world:
//   node plugin-sdk/js/build.mjs PLUGIN.js OUT.wasm [WIT_DIR]
// WIT_DIR defaults to the repository's wit/. The plugin may import other
// modules by relative path (flow-plugin.js).
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const [source, output, witDir] = process.argv.slice(2);
if (!source || !output) {
  console.error("usage: node plugin-sdk/js/build.mjs PLUGIN.js OUT.wasm [WIT_DIR]");
  process.exit(2);
}
const wit = resolve(witDir ?? resolve(dirname(fileURLToPath(import.meta.url)), "../../wit"));
const { component } = await componentize({
  sourcePath: resolve(source),
  witPath: wit,
  worldName: "action",
  // The host provides no wasi:http; leave out what would import it.
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(output, component);
