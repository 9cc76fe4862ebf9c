"""The Teams side, and the only package that imports botbuilder/botframework."""
