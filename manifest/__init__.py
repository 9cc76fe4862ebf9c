"""The Teams app package: manifest template, icons, and the builder of the uploadable zip (`manifest.build`)."""
