#!/usr/bin/env node
// The published CLI runs the compiled library (npm ci / npm install builds dist/ through "prepare").
import '../dist/cli/run.js';
