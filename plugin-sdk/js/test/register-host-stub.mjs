// Outside a component there is no host: tests resolve the host interface
// to a stub that records log calls.
import { register } from "node:module";

register("./host-stub-loader.mjs", import.meta.url);
